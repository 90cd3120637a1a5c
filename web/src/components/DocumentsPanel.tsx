import { useCallback, useEffect, useState, type DragEvent } from "react";
import type { Document } from "@edgebrain/types";
import { DOCUMENT_EXTENSIONS, api, errorText, uploadDocument } from "../api";
import { formatBytes, formatTime } from "../format";
import { DocumentText } from "./DocumentText";

const TYPE_NAMES: { [mediaType: string]: string } = {
  "text/plain": "Text",
  "text/markdown": "Markdown",
  "text/html": "HTML",
  "application/pdf": "PDF",
};

/** One file on its way in: bytes sent, then the brain extracting, chunking and embedding it. */
type UploadRow = { key: number; name: string; loaded: number; total: number; state: "uploading" | "indexing" | "done" | "error"; error?: string };

type Listing = { state: "loading" } | { state: "error"; message: string } | { state: "ready"; documents: Array<Document> };

function UploadProgress(props: { upload: UploadRow }) {
  const { upload } = props;
  const words = { uploading: "Uploading…", indexing: "Indexing…", done: "Added", error: upload.error ?? "Failed" }[upload.state];
  return (
    <li data-testid="document-upload" data-state={upload.state}>
      <span className="upload-name">{upload.name}</span>
      <progress max={upload.total || 1} value={upload.loaded} aria-label={`Upload of ${upload.name}`} />
      <span className={upload.state === "error" ? "error" : "muted"} role={upload.state === "error" ? "alert" : undefined}>
        {words}
      </span>
    </li>
  );
}

/**
 * The caller's documents (the knowledge base the agents search): upload by drag and drop or the
 * file picker, with progress; the list; each document's text; delete.
 */
export function DocumentsPanel() {
  const [listing, setListing] = useState<Listing>({ state: "loading" });
  const [uploads, setUploads] = useState<Array<UploadRow>>([]);
  const [error, setError] = useState<string | null>(null);
  const [opened, setOpened] = useState<Document | null>(null);
  const [dragging, setDragging] = useState(false);
  // Remounts the file input after a choice, so the same file can be chosen again.
  const [inputKey, setInputKey] = useState(0);

  const refresh = useCallback(() => {
    api
      .listDocuments()
      .then((list) => setListing({ state: "ready", documents: list.documents }))
      .catch((reason: unknown) => setListing({ state: "error", message: errorText(reason) }));
  }, []);
  useEffect(refresh, [refresh]);

  const update = (key: number, change: Partial<UploadRow>) =>
    setUploads((rows) => rows.map((row) => (row.key === key ? { ...row, ...change } : row)));

  const upload = (files: ReadonlyArray<File>) => {
    setError(null);
    const base = Date.now();
    const rows: Array<UploadRow> = files.map((file, index) => ({ key: base + index, name: file.name, loaded: 0, total: file.size, state: "uploading" }));
    setUploads((current) => [...rows, ...current.filter((row) => row.state === "uploading" || row.state === "indexing")]);
    // One after the other: each upload is embedded by the brain before it answers.
    void rows.reduce(async (previous, row, index) => {
      await previous;
      const file = files[index];
      if (!file) return;
      const { done } = uploadDocument(file, (loaded, total) => update(row.key, { loaded, total, state: loaded >= total ? "indexing" : "uploading" }));
      try {
        await done;
        update(row.key, { state: "done", loaded: file.size });
        refresh();
      } catch (reason) {
        update(row.key, { state: "error", error: errorText(reason) });
      }
    }, Promise.resolve());
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    const files = Array.from(event.dataTransfer.files);
    if (files.length > 0) upload(files);
  };

  const remove = (document: Document) => {
    if (!window.confirm(`Delete the document "${document.name}"? Answers can no longer cite it.`)) return;
    setError(null);
    api
      .deleteDocument(document.id)
      .then(() => {
        if (opened?.id === document.id) setOpened(null);
        refresh();
      })
      .catch((reason: unknown) => setError(errorText(reason)));
  };

  return (
    <section className="panel documents" aria-label="Documents">
      <h2>Documents</h2>
      <p className="muted">Policies, manuals and notes the assistant searches and cites.</p>
      <div
        className={`dropzone${dragging ? " dragging" : ""}`}
        data-testid="document-dropzone"
        onDragOver={(event) => {
          event.preventDefault();
          event.dataTransfer.dropEffect = "copy";
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop .txt, .md, .html or .pdf files here, or choose them:</p>
        <input
          key={inputKey}
          type="file"
          multiple
          aria-label="Document files"
          accept={DOCUMENT_EXTENSIONS.join(",")}
          onChange={(event) => {
            const files = Array.from(event.target.files ?? []);
            setInputKey((key) => key + 1);
            if (files.length > 0) upload(files);
          }}
        />
      </div>
      {uploads.length > 0 ? (
        <ul className="uploads" aria-label="Uploads">
          {uploads.map((row) => (
            <UploadProgress key={row.key} upload={row} />
          ))}
        </ul>
      ) : null}
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
      <DocumentList listing={listing} opened={opened} onOpen={setOpened} onDelete={remove} onRetry={refresh} />
      {opened ? (
        <div className="document-view" data-testid="document-view">
          <div className="dialog-head">
            <h3>{opened.name}</h3>
            <button type="button" onClick={() => setOpened(null)}>
              Close
            </button>
          </div>
          <DocumentText documentId={opened.id} passage={null} label={`Text of ${opened.name}`} />
        </div>
      ) : null}
    </section>
  );
}

function DocumentList(props: {
  listing: Listing;
  opened: Document | null;
  onOpen: (document: Document) => void;
  onDelete: (document: Document) => void;
  onRetry: () => void;
}) {
  const { listing } = props;
  if (listing.state === "loading") {
    return (
      <p className="muted" role="status" data-testid="documents" data-state="loading">
        Loading documents…
      </p>
    );
  }
  if (listing.state === "error") {
    return (
      <div data-testid="documents" data-state="error">
        <p className="error" role="alert">
          The documents could not be listed: {listing.message}
        </p>
        <button type="button" onClick={props.onRetry}>
          Try again
        </button>
      </div>
    );
  }
  if (listing.documents.length === 0) {
    return (
      <p className="muted" data-testid="documents" data-state="empty">
        No documents yet: drop a file above to add one.
      </p>
    );
  }
  return (
    <div className="table-wrap" data-testid="documents" data-state="ready">
      <table className="document-table">
        <caption>Your documents</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Size</th>
            <th scope="col">Chunks</th>
            <th scope="col">Added</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {listing.documents.map((document) => (
            <tr key={document.id} data-testid="document" data-document-id={document.id} className={props.opened?.id === document.id ? "current" : ""}>
              <td className="document-name" title={document.name}>
                {document.name}
              </td>
              {/* data-label: the column's name where a phone shows each row as a card. */}
              <td data-label="Type">{TYPE_NAMES[document.media_type] ?? document.media_type}</td>
              <td data-label="Size">{formatBytes(document.bytes)}</td>
              <td data-label="Chunks" data-testid="document-chunks">
                {document.chunk_count}
              </td>
              <td data-label="Added">{formatTime(document.created_at_ms)}</td>
              <td className="row-actions">
                <button type="button" aria-label={`Open ${document.name}`} onClick={() => props.onOpen(document)}>
                  Open
                </button>
                <button type="button" aria-label={`Delete ${document.name}`} onClick={() => props.onDelete(document)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
