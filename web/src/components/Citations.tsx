import type { DynamicToolUIPart, SourceDocumentUIPart } from "ai";
import { useState } from "react";
import type { KnowledgeSearchOutput } from "@edgebrain/types";
import { PassageDialog } from "./PassageDialog";

/** One cited chunk: the document and the chars `start..end` of its text. */
export type Citation = { key: string; documentId: string; documentName: string; start: number; end: number };

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The brain cites a chunk as `source-document` with its place in `providerMetadata.edgebrain`. */
function fromSource(part: SourceDocumentUIPart): Citation | null {
  const place = part.providerMetadata?.["edgebrain"];
  if (!isObject(place)) return null;
  const { documentId, start, end } = place;
  if (typeof documentId !== "string" || typeof start !== "number" || typeof end !== "number") return null;
  return { key: part.sourceId, documentId, documentName: part.title, start, end };
}

/** A search_knowledge result, for messages whose source parts are missing. */
function fromSearch(part: DynamicToolUIPart): Array<Citation> {
  if (part.toolName !== "search_knowledge" || part.state !== "output-available") return [];
  const output = part.output as KnowledgeSearchOutput | undefined;
  if (!isObject(output) || !Array.isArray(output.hits)) return [];
  return output.hits.map((hit) => ({
    key: `${hit.document_id}:${hit.chunk_index}`,
    documentId: hit.document_id,
    documentName: hit.document_name,
    start: hit.start,
    end: hit.end,
  }));
}

/** The passages an answer's knowledge searches found, once each, in the order cited. */
export function citationsOf(parts: ReadonlyArray<{ type: string }>): Array<Citation> {
  const sources = parts.flatMap((part) => (part.type === "source-document" ? [fromSource(part as SourceDocumentUIPart)] : []));
  const found = sources.length > 0 ? sources : parts.flatMap((part) => (part.type === "dynamic-tool" ? fromSearch(part as DynamicToolUIPart) : []));
  const seen = new Set<string>();
  return found.filter((citation): citation is Citation => {
    if (!citation || seen.has(citation.key)) return false;
    seen.add(citation.key);
    return true;
  });
}

/** An answer's sources as numbered citations; each opens its passage in the document. */
export function Citations(props: { parts: ReadonlyArray<{ type: string }> }) {
  const [open, setOpen] = useState<Citation | null>(null);
  const citations = citationsOf(props.parts);
  if (citations.length === 0) return null;
  return (
    <section className="citations" aria-label="Sources">
      <span className="muted">Sources:</span>
      <ol>
        {citations.map((citation, index) => (
          <li key={citation.key}>
            <button
              type="button"
              className="citation"
              data-testid="citation"
              data-document-id={citation.documentId}
              data-start={citation.start}
              data-end={citation.end}
              aria-label={`Source ${index + 1}: open the passage in ${citation.documentName}`}
              onClick={() => setOpen(citation)}
            >
              [{index + 1}] {citation.documentName}
            </button>
          </li>
        ))}
      </ol>
      {open ? (
        <PassageDialog
          documentId={open.documentId}
          documentName={open.documentName}
          passage={{ start: open.start, end: open.end }}
          onClose={() => setOpen(null)}
        />
      ) : null}
    </section>
  );
}
