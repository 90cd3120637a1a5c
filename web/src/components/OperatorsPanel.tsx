import { useCallback, useEffect, useState } from "react";
import type { DatasetInfo, Escalation, EscalationStatus, MemoryStats, Message } from "@edgebrain/types";
import { api, errorText } from "../api";
import { formatBytes, formatTime } from "../format";

type Loaded<T> = { state: "loading" } | { state: "error"; message: string } | { state: "ready"; value: T };

/** Loads once, and again on `reload()`; the loading, error and ready states in one value. */
function useLoaded<T>(load: () => Promise<T>): [Loaded<T>, () => void] {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  const reload = useCallback(() => {
    load()
      .then((value) => setLoaded({ state: "ready", value }))
      .catch((reason: unknown) => setLoaded({ state: "error", message: errorText(reason) }));
  }, [load]);
  useEffect(reload, [reload]);
  return [loaded, reload];
}

/**
 * The loading and error states of a view `testId` (its `data-state`), or null once its value is
 * there; the caller renders the ready (or empty) state.
 */
function NotReady<T>(props: { loaded: Loaded<T>; testId: string; loading: string; onRetry: () => void }) {
  if (props.loaded.state === "loading") {
    return (
      <p className="muted" role="status" data-testid={props.testId} data-state="loading">
        {props.loading}
      </p>
    );
  }
  if (props.loaded.state === "error") {
    return (
      <div data-testid={props.testId} data-state="error">
        <Failed message={props.loaded.message} onRetry={props.onRetry} />
      </div>
    );
  }
  return null;
}

function Failed(props: { message: string; onRetry: () => void }) {
  return (
    <div>
      <p className="error" role="alert">
        {props.message}
      </p>
      <button type="button" onClick={props.onRetry}>
        Try again
      </button>
    </div>
  );
}

/** The text parts of a stored message. */
function textOf(message: Message): string {
  return message.parts
    .map((part) => {
      if (part === null || typeof part !== "object" || Array.isArray(part)) return "";
      return part.type === "text" && typeof part.text === "string" ? part.text : "";
    })
    .join("");
}

/** The escalated conversation, read-only (an operator reads any owner's to take over). */
function Transcript(props: { escalationId: string }) {
  const load = useCallback(() => api.escalationMessages(props.escalationId), [props.escalationId]);
  const [loaded, reload] = useLoaded(load);
  if (loaded.state !== "ready") {
    return <NotReady loaded={loaded} testId="escalation-transcript" loading="Loading the conversation…" onRetry={reload} />;
  }
  return (
    <ol className="transcript" data-testid="escalation-transcript" data-state="ready" aria-label="The escalated conversation">
      {loaded.value.messages.map((message) => (
        <li key={message.id} className={`transcript-${message.role}`} data-testid={`transcript-${message.role}`}>
          <span className="muted">{message.role === "user" ? "Customer" : "Agent"}: </span>
          {textOf(message)}
        </li>
      ))}
    </ol>
  );
}

/**
 * One escalation: what the agent said, whose conversation (readable here whoever owns it; the
 * operator's own threads also open in the chat), and the resolve form.
 */
function EscalationItem(props: { escalation: Escalation; ownThread: boolean; onOpenThread: (id: string) => void; onResolved: () => void }) {
  const { escalation } = props;
  const [note, setNote] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [reading, setReading] = useState(false);
  const noteId = `resolution-${escalation.id}`;
  const resolve = () => {
    setSending(true);
    setError(null);
    api
      .resolveEscalation(escalation.id, { resolution: note.trim() || null })
      .then(props.onResolved)
      .catch((reason: unknown) => setError(errorText(reason)))
      .finally(() => setSending(false));
  };
  return (
    <li className={`escalation urgency-${escalation.urgency}`} data-testid="escalation" data-escalation-id={escalation.id} data-state={escalation.status}>
      <p className="escalation-reason">{escalation.reason}</p>
      <p className="muted escalation-meta">
        <span className="urgency">{escalation.urgency} urgency</span> · agent {escalation.agent} · {escalation.owner} · {formatTime(escalation.created_at_ms)}
      </p>
      <div className="message-actions">
        <button type="button" aria-expanded={reading} onClick={() => setReading((open) => !open)}>
          {reading ? "Hide the conversation" : "Read the conversation"}
        </button>
        {props.ownThread ? (
          <button type="button" onClick={() => props.onOpenThread(escalation.thread_id)}>
            Open the thread
          </button>
        ) : null}
      </div>
      {reading ? <Transcript escalationId={escalation.id} /> : null}
      {escalation.status === "resolved" ? (
        <p data-testid="escalation-resolution">
          Resolved {escalation.resolved_at_ms ? formatTime(escalation.resolved_at_ms) : ""} by {escalation.resolved_by ?? "?"}
          {escalation.resolution ? `: ${escalation.resolution}` : ""}
        </p>
      ) : (
        <form
          className="resolve"
          onSubmit={(event) => {
            event.preventDefault();
            resolve();
          }}
        >
          <label htmlFor={noteId}>Note</label>
          <input id={noteId} value={note} maxLength={2000} placeholder="What was done" onChange={(event) => setNote(event.target.value)} />
          <button type="submit" disabled={sending}>
            Resolve
          </button>
        </form>
      )}
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
    </li>
  );
}

function EscalationQueue(props: { owner: string; onOpenThread: (id: string) => void }) {
  const [status, setStatus] = useState<EscalationStatus | "all">("open");
  const load = useCallback(() => api.listEscalations(status === "all" ? null : status), [status]);
  const [loaded, reload] = useLoaded(load);
  return (
    <section className="escalations" aria-labelledby="escalations-title">
      <div className="section-head">
        <h3 id="escalations-title">Escalations</h3>
        <label>
          Show{" "}
          <select value={status} onChange={(event) => setStatus(event.target.value as EscalationStatus | "all")}>
            <option value="open">open</option>
            <option value="resolved">resolved</option>
            <option value="all">all</option>
          </select>
        </label>
        <button type="button" onClick={reload} aria-label="Refresh the escalations">
          Refresh
        </button>
      </div>
      {loaded.state !== "ready" ? (
        <NotReady loaded={loaded} testId="escalations" loading="Loading escalations…" onRetry={reload} />
      ) : loaded.value.escalations.length === 0 ? (
        <p className="muted" data-testid="escalations" data-state="empty">
          No {status === "all" ? "" : `${status} `}escalations.
        </p>
      ) : (
        <ul className="escalation-list" data-testid="escalations" data-state="ready">
          {loaded.value.escalations.map((escalation) => (
            <EscalationItem
              key={escalation.id}
              escalation={escalation}
              ownThread={escalation.owner === props.owner}
              onOpenThread={props.onOpenThread}
              onResolved={reload}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

type MemoryView = { stats: MemoryStats; names: Map<string, DatasetInfo> };

async function loadMemory(): Promise<MemoryView> {
  const [stats, list] = await Promise.all([api.memory(), api.listDatasets()]);
  return { stats, names: new Map(list.datasets.map((dataset) => [dataset.id, dataset])) };
}

function MemoryOverview() {
  const [loaded, reload] = useLoaded(loadMemory);
  return (
    <section className="memory" aria-labelledby="memory-title">
      <div className="section-head">
        <h3 id="memory-title">Datasets in memory</h3>
        <button type="button" onClick={reload} aria-label="Refresh the memory overview">
          Refresh
        </button>
      </div>
      {loaded.state !== "ready" ? (
        <NotReady loaded={loaded} testId="memory" loading="Loading…" onRetry={reload} />
      ) : (
        <div data-testid="memory" data-state="ready">
          <dl className="memory-totals">
            <div>
              <dt>Used</dt>
              <dd data-testid="memory-used">
                {formatBytes(loaded.value.stats.used_bytes)} of {formatBytes(loaded.value.stats.budget_bytes)}
              </dd>
            </div>
            <div>
              <dt>Loaded frames</dt>
              <dd data-testid="memory-frames">{loaded.value.stats.loaded_frames}</dd>
            </div>
            <div>
              <dt>Loads / evictions</dt>
              <dd>
                {loaded.value.stats.loads} / {loaded.value.stats.evictions}
              </dd>
            </div>
          </dl>
          {loaded.value.stats.frames.length === 0 ? (
            <p className="muted">No dataset is loaded (they load when queried).</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption>Every tenant's datasets in memory</caption>
                <thead>
                  <tr>
                    <th scope="col">Dataset</th>
                    <th scope="col">Size</th>
                    <th scope="col">Pinned</th>
                  </tr>
                </thead>
                <tbody>
                  {loaded.value.stats.frames.map((frame) => (
                    <tr key={frame.id} data-testid="memory-frame" data-dataset-id={frame.id}>
                      <td>{loaded.value.names.get(frame.id)?.name ?? `another identity's dataset ${frame.id}`}</td>
                      <td>{formatBytes(frame.bytes)}</td>
                      <td>{frame.pinned ? "yes" : "no"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </section>
  );
}

/** For operators (scope `edgebrain:operator`): the escalation queue and the memory overview. */
export function OperatorsPanel(props: { owner: string; onOpenThread: (id: string) => void }) {
  return (
    <section className="panel operators" aria-label="Operators">
      <h2>Operators</h2>
      <EscalationQueue owner={props.owner} onOpenThread={props.onOpenThread} />
      <MemoryOverview />
    </section>
  );
}
