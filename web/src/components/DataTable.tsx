import type { JsonValue } from "@edgebrain/types";
import { formatCellNumber } from "../numbers";
import { ScrollRegion } from "./ScrollRegion";

type Row = { [key in string]?: JsonValue };

function cell(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A cell: numbers in the reader's locale (the raw value in `data-raw` and the tooltip). */
function Cell(props: { value: JsonValue | undefined; column: string }) {
  const { value } = props;
  if (typeof value === "number") {
    const raw = String(value);
    return (
      <td className="num" data-raw={raw} title={raw}>
        {formatCellNumber(value, props.column)}
      </td>
    );
  }
  return <td>{cell(value)}</td>;
}

/** A plain table of result rows; `columns` fixes the order (default: keys of the first row). */
export function DataTable(props: { rows: ReadonlyArray<Row>; columns?: ReadonlyArray<string>; caption?: string; testId?: string }) {
  const columns = props.columns ?? Object.keys(props.rows[0] ?? {});
  return (
    <ScrollRegion className="table-wrap" label={props.caption ?? "Table"} data-testid={props.testId}>
      <table>
        {props.caption ? <caption>{props.caption}</caption> : null}
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row, index) => (
            <tr key={index}>
              {columns.map((column) => (
                <Cell key={column} value={row[column]} column={column} />
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollRegion>
  );
}
