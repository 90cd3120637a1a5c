import type { DynamicToolUIPart } from "ai";
import type { JsonValue } from "@edgebrain/types";
import { Chart } from "./Chart";
import { DataTable } from "./DataTable";
import { ScrollRegion } from "./ScrollRegion";

type Row = { [key in string]?: JsonValue };

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rowsOf(output: unknown): { rows: Array<Row>; columns?: Array<string> } | null {
  if (!isObject(output)) return null;
  const rows = output["rows"];
  if (!Array.isArray(rows) || !rows.every(isObject)) return null;
  const columns = output["columns"];
  const names = Array.isArray(columns)
    ? columns.map((column: unknown) => (isObject(column) && typeof column["name"] === "string" ? column["name"] : String(column)))
    : undefined;
  return names ? { rows: rows as Array<Row>, columns: names } : { rows: rows as Array<Row> };
}

/**
 * One tool call as the reader sees it: a chart for `chart`, a table for row results, the raw
 * output otherwise; its error, or "running…" while it runs.
 */
export function ToolResult(props: { part: DynamicToolUIPart }) {
  const { part } = props;
  const label = <div className="tool-label">tool: {part.toolName}</div>;
  if (part.state === "output-error") {
    return (
      <div className="tool tool-error" data-testid={`tool-${part.toolName}`}>
        {label}
        <p className="error">{part.errorText}</p>
      </div>
    );
  }
  if (part.state !== "output-available") {
    return (
      <div className="tool" data-testid={`tool-${part.toolName}`}>
        {label}
        <p className="muted">running…</p>
      </div>
    );
  }
  const output: unknown = part.output;
  if (part.toolName === "chart" && isObject(output) && isObject(output["spec"])) {
    return (
      <div className="tool" data-testid="tool-chart">
        {label}
        <Chart spec={output["spec"] as JsonValue} />
        {output["truncated"] === true ? <p className="muted">the chart shows the first {String(output["rows"])} rows</p> : null}
      </div>
    );
  }
  // The passages themselves are the answer's citations (Citations); here only what was found.
  if (part.toolName === "search_knowledge" && isObject(output) && Array.isArray(output["hits"])) {
    const hits = output["hits"].length;
    const note = typeof output["note"] === "string" ? ` (${output["note"]})` : "";
    return (
      <div className="tool" data-testid="tool-search_knowledge">
        <div className="tool-label">
          searched the documents: {hits} {hits === 1 ? "passage" : "passages"}
          {note}
        </div>
      </div>
    );
  }
  if (part.toolName === "escalate_to_human" && isObject(output) && typeof output["escalation_id"] === "string") {
    return (
      <div className="tool" data-testid="tool-escalate_to_human">
        <div className="tool-label">
          handed to a person ({String(output["urgency"])} urgency, {String(output["status"])})
        </div>
      </div>
    );
  }
  const table = rowsOf(output);
  if (table) {
    return (
      <div className="tool" data-testid={`tool-${part.toolName}`}>
        {label}
        <DataTable rows={table.rows} {...(table.columns ? { columns: table.columns } : {})} testId="tool-table" />
      </div>
    );
  }
  return (
    <div className="tool" data-testid={`tool-${part.toolName}`}>
      {label}
      <ScrollRegion as="pre" label={`Output of ${part.toolName}`}>
        {JSON.stringify(output, null, 2)}
      </ScrollRegion>
    </div>
  );
}
