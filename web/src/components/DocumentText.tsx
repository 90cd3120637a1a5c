import { useEffect, useRef, useState } from "react";
import { api, errorText } from "../api";

/** A cited range of a document's text: chars `start..end`, end exclusive. */
export type Passage = { start: number; end: number };

/**
 * Splits at char offsets. The brain counts Unicode scalar values (Rust `char`s), not the UTF-16
 * units JavaScript strings index by, so the text is split into code points first.
 */
function splitAt(text: string, passage: Passage): [string, string, string] {
  const chars = Array.from(text);
  return [chars.slice(0, passage.start).join(""), chars.slice(passage.start, passage.end).join(""), chars.slice(passage.end).join("")];
}

type Loaded = { state: "loading" } | { state: "error"; message: string } | { state: "ready"; text: string };

/** A document's extracted text, with the passage (if any) highlighted and scrolled into view. */
export function DocumentText(props: { documentId: string; passage: Passage | null; label: string }) {
  const [loaded, setLoaded] = useState<Loaded>({ state: "loading" });
  const mark = useRef<HTMLElement>(null);

  useEffect(() => {
    let current = true;
    setLoaded({ state: "loading" });
    api
      .documentText(props.documentId)
      .then((text) => current && setLoaded({ state: "ready", text }))
      .catch((reason: unknown) => current && setLoaded({ state: "error", message: errorText(reason) }));
    return () => {
      current = false;
    };
  }, [props.documentId]);

  useEffect(() => {
    if (loaded.state === "ready") mark.current?.scrollIntoView({ block: "center" });
  }, [loaded, props.passage]);

  if (loaded.state === "loading") {
    return (
      <p className="muted" role="status" data-testid="document-text" data-state="loading">
        Loading the text…
      </p>
    );
  }
  if (loaded.state === "error") {
    return (
      <p className="error" role="alert" data-testid="document-text" data-state="error">
        The text could not be loaded: {loaded.message}
      </p>
    );
  }
  const [before, cited, after] = props.passage ? splitAt(loaded.text, props.passage) : [loaded.text, "", ""];
  return (
    // Focusable so the keyboard can scroll it.
    <div className="document-text" tabIndex={0} role="region" aria-label={props.label} data-testid="document-text" data-state="ready">
      {before}
      {props.passage ? (
        <mark ref={mark} data-testid="cited-passage">
          {cited}
        </mark>
      ) : null}
      {after}
    </div>
  );
}
