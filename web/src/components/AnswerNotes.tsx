import type { GroundingReport, Notice } from "@edgebrain/types";

/**
 * The grounding check's verdict under an answer: nothing when it states no numbers, a quiet
 * confirmation when every number matched the data the turn read, and a warning naming the
 * numbers nothing produced and the query conditions the question did not ask for.
 */
export function Grounding(props: { report: GroundingReport }) {
  const { report } = props;
  if (report.status === "no-claims") return null;
  if (report.status === "verified") {
    return (
      <p className="grounding verified" data-testid="grounding" data-status="verified">
        ✓ Numbers checked against your data
      </p>
    );
  }
  const unmatched = report.claims.filter((claim) => claim.basis === undefined || claim.basis === null).map((claim) => claim.text);
  const unasked = report.unaskedConditions ?? [];
  const why =
    report.toolCalls === 0
      ? "no data was looked up for this answer"
      : `no result of this answer's queries contains ${unmatched.length === 1 ? "it" : "them"}`;
  return (
    <p className="grounding unverified" role="note" data-testid="grounding" data-status="unverified">
      <strong>Not verified against your data</strong>
      {unmatched.length > 0 ? <> — {unmatched.join(", ")}: {why}.</> : null}
      {unasked.length > 0 ? (
        <>
          {unmatched.length > 0 ? " The" : " — the"} query kept only rows where <code>{unasked.join(", ")}</code>, which
          your question did not ask for.
        </>
      ) : null}
    </p>
  );
}

/** Something the reader should know about how the answer was made (`data-notice`). */
export function AnswerNotice(props: { notice: Notice }) {
  return (
    <p className="notice" role="note" data-testid={`notice-${props.notice.kind}`}>
      {props.notice.message}
    </p>
  );
}

/** A reply the model cut off at its output limit, with a way to have it go on. */
export function CutOff(props: { onContinue: (() => void) | null }) {
  return (
    <p className="cut-off" role="note" data-testid="cut-off">
      Cut off — the reply reached its length limit.{" "}
      {props.onContinue ? (
        <button type="button" onClick={props.onContinue}>
          Continue
        </button>
      ) : null}
    </p>
  );
}
