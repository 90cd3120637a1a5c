import type { DynamicToolUIPart } from "ai";
import type { Provenance as ProvenanceData } from "@edgebrain/types";
import { ToolResult } from "./ToolResult";

/** One data tool call behind an answer: what it read (`data-provenance`) and its tool part. */
export type Evidence = { provenance: ProvenanceData; tool: DynamicToolUIPart | undefined };

const TOOL_NAMES: { [tool: string]: string } = {
  sql: "Query",
  chart: "Chart",
  describe_dataset: "Described",
  list_datasets: "Listed datasets",
};

function rowsText(provenance: ProvenanceData): string | null {
  const { rowCount, rowCountExact, shownRows, truncated } = provenance;
  if (rowCount === undefined || rowCount === null) return null;
  const total = `${rowCountExact ? "" : "at least "}${rowCount.toLocaleString("en-US")} ${rowCount === 1 ? "row" : "rows"}`;
  if (truncated && shownRows !== undefined && shownRows !== null) return `${total}; the first ${shownRows.toLocaleString("en-US")} shown`;
  return total;
}

/**
 * The evidence under an answer: each result (table or chart), and, folded, how it was
 * computed — the tool, the SQL exactly as it ran, the datasets at the versions read, the rows.
 */
export function Provenance(props: { evidence: ReadonlyArray<Evidence> }) {
  const shown = props.evidence.filter((item) => item.tool && (item.provenance.tool === "sql" || item.provenance.tool === "chart"));
  return (
    // A group, not a landmark: one per answer, and landmarks should be few and unique (axe).
    <section className="provenance" role="group" aria-label="Data behind this answer">
      {shown.map((item) => (item.tool ? <ToolResult key={item.provenance.toolCallId} part={item.tool} /> : null))}
      <details data-testid="provenance">
        <summary>How this was computed</summary>
        <ol>
          {props.evidence.map((item, index) => {
            const { provenance } = item;
            const rows = rowsText(provenance);
            return (
              <li key={`${provenance.toolCallId}-${index}`} data-testid="provenance-step">
                <span className="step-tool">{TOOL_NAMES[provenance.tool] ?? provenance.tool}</span>
                {provenance.datasets.length > 0 ? (
                  <span className="step-datasets" data-testid="provenance-datasets">
                    {" "}
                    {provenance.datasets.map((dataset) => `${dataset.name} (version ${dataset.version})`).join(", ")}
                  </span>
                ) : null}
                {provenance.sql ? (
                  <pre className="sql" data-testid="provenance-sql">
                    {provenance.sql}
                  </pre>
                ) : null}
                {rows ? <p className="muted step-rows">{rows}</p> : null}
              </li>
            );
          })}
        </ol>
      </details>
    </section>
  );
}
