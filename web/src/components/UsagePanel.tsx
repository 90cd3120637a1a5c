import { useEffect, useState } from "react";
import type { UsageReport } from "@edgebrain/types";
import { api, errorText } from "../api";

const count = new Intl.NumberFormat(undefined);
const dollars = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 4 });

/** What the caller's replies cost so far, what is left of the budget, and how often the answers were checked against the data. */
export function UsagePanel() {
  const [report, setReport] = useState<UsageReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .usage()
      .then(setReport)
      .catch((reason: unknown) => setError(errorText(reason)));
  }, []);

  if (error) {
    return (
      <section className="panel usage" aria-label="Usage">
        <h2>Usage</h2>
        <p className="error" role="alert">
          {error}
        </p>
      </section>
    );
  }
  if (!report) {
    return (
      <section className="panel usage" aria-label="Usage">
        <h2>Usage</h2>
        <p className="muted">Loading…</p>
      </section>
    );
  }
  const spent = report.usage.input_tokens + report.usage.output_tokens;
  const left = report.budget_tokens === null ? null : Math.max(0, report.budget_tokens - spent);
  const rows: Array<[string, string, string]> = [
    ["runs", "Replies", count.format(report.runs)],
    ["tokens-in", "Tokens read", count.format(report.usage.input_tokens)],
    ["tokens-out", "Tokens written", count.format(report.usage.output_tokens)],
    ["cost", "Cost", dollars.format(report.usage.cost_micro_usd / 1_000_000)],
    ["budget", "Budget left", left === null ? "unlimited" : `${count.format(left)} of ${count.format(report.budget_tokens ?? 0)} tokens`],
    ["verified", "Answers checked against your data", count.format(report.grounding.verified)],
    ["unverified", "Answers with numbers not from your data", count.format(report.grounding.unverified)],
  ];
  return (
    <section className="panel usage" aria-label="Usage">
      <h2>Usage</h2>
      {report.runs === 0 ? <p className="muted">No replies yet: ask something in the chat.</p> : null}
      <dl>
        {rows.map(([key, label, value]) => (
          <div key={key}>
            <dt>{label}</dt>
            <dd data-testid={`usage-${key}`}>{value}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
