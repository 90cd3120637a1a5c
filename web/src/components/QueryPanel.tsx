import { useState, type FormEvent } from "react";
import type { QueryResult } from "@edgebrain/types";
import { api, errorText } from "../api";
import { DataTable } from "./DataTable";

export function QueryPanel() {
  const [sql, setSql] = useState("SELECT store_id, SUM(quantity) AS units FROM transactions GROUP BY store_id ORDER BY units DESC LIMIT 10");
  const [result, setResult] = useState<QueryResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);

  const run = (event: FormEvent) => {
    event.preventDefault();
    setRunning(true);
    setError(null);
    api
      .sql({ sql, shape: "rows", offset: 0, limit: 500 })
      .then(setResult)
      .catch((reason: unknown) => {
        setResult(null);
        setError(errorText(reason));
      })
      .finally(() => setRunning(false));
  };

  return (
    <section className="panel query" aria-label="SQL query">
      <h2>Query</h2>
      <form onSubmit={run}>
        <textarea aria-label="SQL" rows={4} value={sql} onChange={(event) => setSql(event.target.value)} spellCheck={false} />
        <button type="submit" disabled={running || !sql.trim()}>
          {running ? "Running…" : "Run"}
        </button>
      </form>
      {error ? <p className="error" role="alert">{error}</p> : null}
      {result ? (
        <>
          <p className="muted" data-testid="query-summary">
            {result.page.returned} rows in {result.elapsed_ms.toFixed(1)} ms{result.page.next_offset !== null ? " (more rows follow)" : ""}
          </p>
          <DataTable rows={result.rows ?? []} columns={result.columns.map((column) => column.name)} testId="query-result" />
        </>
      ) : null}
    </section>
  );
}
