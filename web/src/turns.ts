// Retry and edit as new turns. The brain's thread history is append-only (there is no way to
// drop or replace its last turn), so "Retry" and "Edit" send a new question rather than
// rewriting history; the question says so in its first line, for the model (it answers the
// question below, knowing the earlier one stands above) and for the reader. That line is part
// of the stored text, so the thread after a reload reads exactly as the tab showed it.

/** What kind of question a stored user message is. */
export type TurnKind = "question" | "retry" | "edit";

/** The first line of each kind of new turn, followed by a blank line and the question. */
const HEADERS: { [kind in Exclude<TurnKind, "question">]: string } = {
  retry: "Answer this question again (a retry: the earlier answer stays above):",
  edit: "My question, edited (it replaces my earlier one above):",
};

/** The words shown above such a question (the header is not repeated in the bubble). */
export const TURN_LABELS: { [kind in Exclude<TurnKind, "question">]: string } = {
  retry: "Asked again — the earlier answer stays above",
  edit: "Edited question — sent as a new turn; the original stays above",
};

/** The text to send for `question` as a turn of `kind`. */
export function turnText(kind: TurnKind, question: string): string {
  return kind === "question" ? question : `${HEADERS[kind]}\n\n${question}`;
}

/** A stored user message's kind and its question (without the header). */
export function parseTurn(text: string): { kind: TurnKind; question: string } {
  for (const kind of ["retry", "edit"] as const) {
    const prefix = `${HEADERS[kind]}\n\n`;
    if (text.startsWith(prefix)) return { kind, question: text.slice(prefix.length) };
  }
  return { kind: "question", question: text };
}
