import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type ChatStatus, type DynamicToolUIPart, type UIMessage } from "ai";
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { GroundingReport, Message, Notice, Provenance as ProvenanceData, RunMessageMetadata } from "@edgebrain/types";
import { ApiError, api, authHeaders, errorText, failure } from "../api";
import { AnswerNotice, CutOff, Grounding } from "./AnswerNotes";
import { Citations } from "./Citations";
import { MessageText, preloadMarkdown } from "./MessageText";
import { Provenance, type Evidence } from "./Provenance";
import { ToolResult } from "./ToolResult";

/** The brain's `data-*` parts (shared_types::chat::UiMessageChunk) by name. */
type DataParts = { provenance: ProvenanceData; grounding: GroundingReport; notice: Notice };
/** A message of this app: the finish chunk's metadata, edgebrain's data parts. */
type ChatMessage = UIMessage<RunMessageMetadata, DataParts>;

/** What a reply says when the reader asks a cut-off reply to go on. */
const CONTINUE_TEXT = "Continue.";
/** The brain's title of a thread nobody named yet (shared by `POST /api/v1/threads`). */
const DEFAULT_TITLE = "New conversation";
/** The response header naming the run a reply belongs to (shared_types::chat::RUN_ID_HEADER). */
const RUN_ID_HEADER = "x-edgebrain-run-id";
/** How long a Stop waits for the brain to end the stream before it stops reading it. */
const STOP_GRACE_MS = 8_000;
/** Reconnect attempts after a dropped connection (backoff 0.5 s, 1 s, 2 s, …). */
const MAX_RECONNECTS = 5;

/** Questions an empty conversation offers (about the built-in sample). */
const STARTERS = [
  "Which 5 stores had the highest revenue in 2025? Show a chart.",
  "How many transactions used a promotion?",
  "How many units did each store sell?",
  "Which product categories sell best?",
];

/** Stored messages are already shaped like the AI SDK's UIMessage (shared_types::chat::Message). */
function toUiMessage(message: Message): ChatMessage {
  const parts = message.parts as ChatMessage["parts"];
  return message.metadata ? { id: message.id, role: message.role, parts, metadata: message.metadata } : { id: message.id, role: message.role, parts };
}

function textOf(message: ChatMessage): string {
  return message.parts
    .flatMap((part) => (part.type === "text" ? [part.text] : []))
    .join("\n\n");
}

/** A thread's stored history, and the run still writing its last reply, if any. */
type Loaded = { messages: Array<ChatMessage>; liveRun: string | null };

/**
 * Reads the history. A reply is stored when its run ends, so a history ending in a user message
 * whose run is still queued or running has a live reply to reattach to.
 */
async function loadThread(threadId: string): Promise<Loaded> {
  for (let attempt = 0; ; attempt += 1) {
    const stored = await api.allMessages(threadId);
    const messages = stored.map(toUiMessage);
    const last = stored.at(-1);
    if (!last || last.role !== "user" || !last.run_id) return { messages, liveRun: null };
    const run = await api.getRun(last.run_id);
    if (run.state === "queued" || run.state === "running") return { messages, liveRun: run.id };
    // The run ended between the two reads: its reply is stored now (read once more), or it
    // failed without one.
    if (attempt > 0) return { messages, liveRun: null };
  }
}

/** Asks the brain to stop a run; true when it will stop or has already ended. */
async function cancelRun(id: string): Promise<boolean> {
  try {
    await api.cancelRun(id);
    return true;
  } catch (error) {
    return error instanceof ApiError && error.status === 409;
  }
}

/**
 * The run a conversation follows: its id from the reply's response header (before any chunk),
 * or from the history on load; and a Stop that came before the id did.
 */
class RunTracker {
  current: string | null;
  private stopWanted = false;

  constructor(initial: string | null) {
    this.current = initial;
  }

  started(id: string): void {
    this.current = id;
    if (this.stopWanted) {
      this.stopWanted = false;
      void cancelRun(id);
    }
  }

  /** Stops the run on the brain, or as soon as its id is known; false if the brain is unreachable. */
  async stop(): Promise<boolean> {
    if (!this.current) {
      this.stopWanted = true;
      return true;
    }
    return cancelRun(this.current);
  }

  ended(): void {
    this.current = null;
    this.stopWanted = false;
  }
}

/**
 * The AI SDK's HTTP transport on edgebrain's endpoints: replies from
 * `POST /api/v1/threads/{id}/messages` (only the new user message is sent: the brain keeps the
 * history), reconnects to `GET /api/v1/runs/{run}/events`, which replays the run's event log from
 * its start and then follows it live (so the SDK's replay mode rebuilds the reply exactly once).
 * Errors are the shared error shape (`ApiError`), never a raw body.
 */
class EdgebrainTransport extends DefaultChatTransport<ChatMessage> {
  private readonly runs: RunTracker;

  constructor(threadId: string, runs: RunTracker) {
    super({
      api: `/api/v1/threads/${encodeURIComponent(threadId)}/messages`,
      credentials: "same-origin",
      headers: () => authHeaders(),
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (!response.ok) throw await failure(response);
        const runId = response.headers.get(RUN_ID_HEADER);
        if (runId) runs.started(runId);
        return response;
      },
      // The SDK's `trigger` and `messageId` tell the brain about a regenerate or an edit, which
      // replace a stored turn and everything after it.
      prepareSendMessagesRequest: ({ messages, body, trigger, messageId }) => ({
        body: { ...body, trigger, messageId, messages: messages.slice(-1) },
      }),
      prepareReconnectToStreamRequest: () => ({ api: `/api/v1/runs/${encodeURIComponent(runs.current ?? "")}/events` }),
      resumeStreamIsReplay: true,
    });
    this.runs = runs;
  }

  override async reconnectToStream(options: Parameters<DefaultChatTransport<ChatMessage>["reconnectToStream"]>[0]) {
    // Nothing to reattach to: the SDK treats null as "no live reply".
    return this.runs.current ? super.reconnectToStream(options) : null;
  }
}

const TOOL_STATUS: { [tool: string]: string } = {
  sql: "Running SQL…",
  chart: "Drawing the chart…",
  describe_dataset: "Looking at the dataset…",
  list_datasets: "Listing datasets…",
  search_documents: "Searching the documents…",
};

/** The tool call a reply is waiting for (its input being written or the tool running), if any. */
function runningTool(status: ChatStatus, messages: ReadonlyArray<ChatMessage>): string | null {
  if (status !== "streaming") return null;
  const last = messages.at(-1);
  const part = last?.role === "assistant" ? last.parts.at(-1) : undefined;
  return part?.type === "dynamic-tool" && (part.state === "input-streaming" || part.state === "input-available") ? part.toolName : null;
}

/**
 * The status line in words ("Thinking…", "Running SQL…", "Cut off — …"); the SDK's state is its
 * `data-state` and the running tool its `data-tool`, which tests wait on.
 */
function statusText(status: ChatStatus, messages: ReadonlyArray<ChatMessage>, stopping: boolean, reconnecting: boolean): string {
  if (stopping) return "Stopping…";
  const last = messages.at(-1);
  if (status === "ready") {
    return last?.role === "assistant" && last.metadata?.finishReason === "length" ? "Cut off — press Continue to go on" : "";
  }
  if (status === "error") return "";
  if (status === "submitted" || !last || last.role !== "assistant") return reconnecting ? "Reconnecting to the reply…" : "Thinking…";
  const tool = runningTool(status, messages);
  if (tool) return TOOL_STATUS[tool] ?? `Using ${tool}…`;
  const part = last.parts.at(-1);
  if (part?.type === "text" && part.state === "streaming") return "Writing…";
  return "Thinking…";
}

/** How long "Copied" stays on a Copy button. */
const COPIED_MS = 2_000;

/** Copies `text` to the clipboard and says so on the button ("Copied"; `data-state` too). */
function CopyButton(props: { text: string; what: string }) {
  const [done, setDone] = useState<"copied" | "failed" | null>(null);
  useEffect(() => {
    if (!done) return;
    const timer = window.setTimeout(() => setDone(null), COPIED_MS);
    return () => window.clearTimeout(timer);
  }, [done]);
  return (
    <button
      type="button"
      className="action"
      title={`Copy the ${props.what}`}
      data-state={done ?? "idle"}
      onClick={() => {
        navigator.clipboard.writeText(props.text).then(
          () => setDone("copied"),
          () => setDone("failed"),
        );
      }}
    >
      <span aria-live="polite">{done === "copied" ? "Copied" : done === "failed" ? "Copy failed" : "Copy"}</span>
    </button>
  );
}

type MessageActions = {
  /** Continue a cut-off reply (last message only, when idle). */
  onContinue: (() => void) | null;
  /** Generate this reply again in place of this one (last reply only, when idle). */
  onRetry: (() => void) | null;
  /** Send an edited question in place of this one; the turns after it go (idle only). */
  onEdit: ((question: string) => void) | null;
  stopped: boolean;
};

function MessageView(props: { message: ChatMessage } & MessageActions) {
  const { message } = props;
  const [editing, setEditing] = useState<string | null>(null);
  const tools = message.parts.filter((part): part is DynamicToolUIPart => part.type === "dynamic-tool");
  const evidence: Array<Evidence> = [];
  let grounding: GroundingReport | null = null;
  const notices: Array<Notice> = [];
  for (const part of message.parts) {
    if (part.type === "data-provenance") {
      const provenance = part.data;
      evidence.push({ provenance, tool: tools.find((tool) => tool.toolCallId === provenance.toolCallId) });
    } else if (part.type === "data-grounding") grounding = part.data;
    else if (part.type === "data-notice") notices.push(part.data);
  }
  // Tool calls with provenance are shown with it, under the answer.
  const explained = new Set(evidence.map((item) => item.provenance.toolCallId));
  const text = textOf(message);

  if (message.role === "user") {
    const sendEdit = () => {
      if (editing?.trim() && props.onEdit) props.onEdit(editing.trim());
      setEditing(null);
    };
    return (
      <li className="message user" data-testid="message-user" data-message-id={message.id}>
        {editing !== null ? (
          <form
            className="edit"
            onSubmit={(event) => {
              event.preventDefault();
              sendEdit();
            }}
          >
            <textarea
              aria-label="Edit message"
              value={editing}
              autoFocus
              onChange={(event) => setEditing(event.target.value)}
              onKeyDown={(event) => {
                // As in the composer: Enter sends, Shift+Enter a new line; Escape cancels.
                if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
                  event.preventDefault();
                  sendEdit();
                } else if (event.key === "Escape") setEditing(null);
              }}
            />
            <div className="message-actions">
              <button type="submit" disabled={!editing.trim() || !props.onEdit}>
                Send
              </button>
              <button type="button" onClick={() => setEditing(null)}>
                Cancel
              </button>
            </div>
          </form>
        ) : (
          <>
            <p className="text user-text">{text}</p>
            <div className="message-actions">
              <CopyButton text={text} what="question" />
              {props.onEdit ? (
                <button type="button" className="action" title="Edit the question and answer it again (the later turns go)" onClick={() => setEditing(text)}>
                  Edit
                </button>
              ) : null}
            </div>
          </>
        )}
      </li>
    );
  }

  const stopped = props.stopped || message.metadata?.state === "cancelled";
  return (
    <li className="message assistant" data-testid="message-assistant" data-message-id={message.id}>
      {notices.map((notice, index) => (
        <AnswerNotice key={index} notice={notice} />
      ))}
      {message.parts.map((part, index) => {
        switch (part.type) {
          case "text":
            return <MessageText key={index} text={part.text} />;
          case "dynamic-tool":
            return explained.has(part.toolCallId) ? null : <ToolResult key={index} part={part} />;
          default:
            return null;
        }
      })}
      {stopped ? (
        <p className="stopped muted" data-testid="stopped">
          Stopped.
        </p>
      ) : null}
      {message.metadata?.finishReason === "length" ? <CutOff onContinue={props.onContinue} /> : null}
      <Citations parts={message.parts} />
      {evidence.length > 0 ? <Provenance evidence={evidence} /> : null}
      {grounding ? <Grounding report={grounding} /> : null}
      {text || props.onRetry ? (
        <div className="message-actions">
          {text ? <CopyButton text={text} what="answer" /> : null}
          {props.onRetry ? (
            <button type="button" className="action" title="Write this answer again, in place of this one" onClick={props.onRetry}>
              Retry
            </button>
          ) : null}
        </div>
      ) : null}
    </li>
  );
}

/** The chat's error in words: the shared shape (message, code, request id), a lost connection, a failed run. */
function ErrorLine(props: { error: Error; reconnecting: boolean }) {
  const { error } = props;
  const text =
    error instanceof ApiError
      ? errorText(error)
      : error instanceof TypeError
        ? props.reconnecting
          ? "The connection dropped — reconnecting to the reply…"
          : `Cannot reach the server (${error.message}).`
        : `The reply failed: ${error.message}`;
  return (
    <p className="error chat-error" role="alert" data-testid="chat-error">
      {text}
    </p>
  );
}

function Conversation(props: { threadId: string; title: string | null; agent: string | null; initial: Loaded; onActivity: () => void; onOpenThreads: () => void }) {
  const runs = useMemo(() => new RunTracker(props.initial.liveRun), [props.initial]);
  const transport = useMemo(() => new EdgebrainTransport(props.threadId, runs), [props.threadId, runs]);
  const [stopping, setStopping] = useState(false);
  const stoppingRef = useRef(false);
  const [stopped, setStopped] = useState<ReadonlySet<string>>(() => new Set());
  /** The brain is writing another reply in this thread (409): wait for it, or stop it. */
  const [busyOffer, setBusyOffer] = useState<string | null>(null);
  const [reconnecting, setReconnecting] = useState(props.initial.liveRun !== null);
  const reconnects = useRef(0);
  const lastSent = useRef<string | null>(null);
  const [input, setInput] = useState("");
  const [localError, setLocalError] = useState<string | null>(null);

  const { messages, setMessages, sendMessage, regenerate, status, error, stop, resumeStream, clearError } = useChat<ChatMessage>({
    id: props.threadId,
    messages: props.initial.messages,
    transport,
    // Reattach to the live reply on load (reconnectToStream answers null when there is none).
    resume: true,
    onFinish: ({ message, isDisconnect }) => {
      if (stoppingRef.current) setStopped((ids) => new Set(ids).add(message.id));
      stoppingRef.current = false;
      setStopping(false);
      if (!isDisconnect) {
        runs.ended();
        reconnects.current = 0;
        setReconnecting(false);
      }
      props.onActivity();
    },
    onError: (reason) => {
      if (reason instanceof ApiError && reason.status === 409) void onBusy();
      else if (reason instanceof TypeError && runs.current && !stoppingRef.current) reconnectLater();
      else setReconnecting(false);
    },
  });
  const busy = status === "submitted" || status === "streaming";

  /** After a dropped connection: reattach with backoff (and when the browser is back online). */
  function reconnectLater() {
    if (reconnects.current >= MAX_RECONNECTS) {
      setReconnecting(false);
      return;
    }
    setReconnecting(true);
    const delay = 500 * 2 ** reconnects.current;
    reconnects.current += 1;
    window.setTimeout(() => {
      if (runs.current) void resumeStream();
    }, delay);
  }

  useEffect(() => {
    const online = () => {
      if (runs.current && status === "error") void resumeStream();
    };
    window.addEventListener("online", online);
    return () => window.removeEventListener("online", online);
  }, [runs, status, resumeStream]);

  /** The thread has a live run this tab did not start: show the stored history, offer wait/stop. */
  async function onBusy() {
    const draft = lastSent.current;
    try {
      const loaded = await loadThread(props.threadId);
      setMessages(loaded.messages);
      clearError();
      runs.current = loaded.liveRun;
      if (draft) setInput((current) => current || draft);
      setBusyOffer(loaded.liveRun);
      composer.current?.focus();
    } catch (reason) {
      clearError();
      setLocalError(errorText(reason));
    }
  }

  const waitForReply = () => {
    setBusyOffer(null);
    setReconnecting(true);
    void resumeStream();
  };

  const stopOther = async () => {
    const id = busyOffer;
    setBusyOffer(null);
    if (!id) return;
    stoppingRef.current = true;
    setStopping(true);
    if (!(await cancelRun(id))) {
      stoppingRef.current = false;
      setStopping(false);
      setLocalError("The reply could not be stopped: the server is unreachable.");
      return;
    }
    // Follow it to its end, as stored.
    void resumeStream();
  };

  const stopReply = async () => {
    if (!busy || stoppingRef.current) return;
    stoppingRef.current = true;
    setStopping(true);
    // The brain ends the stream once the run stopped (what it stored is what this tab shows).
    if (!(await runs.stop())) void stop();
  };

  // Safety net: a Stop the brain never answers stops reading the stream.
  useEffect(() => {
    if (!stopping || !busy) return;
    const timer = window.setTimeout(() => void stop(), STOP_GRACE_MS);
    return () => window.clearTimeout(timer);
  }, [stopping, busy, stop]);

  // Escape stops the reply wherever the focus is.
  useEffect(() => {
    if (!busy) return;
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === "Escape") void stopReply();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  });

  useEffect(preloadMarkdown, []);

  // The message pane follows new tokens unless the reader scrolled up.
  const pane = useRef<HTMLDivElement>(null);
  const list = useRef<HTMLOListElement>(null);
  const pinnedRef = useRef(true);
  const [pinned, setPinned] = useState(true);
  const toEnd = () => {
    const element = pane.current;
    if (element) element.scrollTop = element.scrollHeight;
  };
  const onScroll = () => {
    const element = pane.current;
    if (!element) return;
    const atEnd = element.scrollHeight - element.scrollTop - element.clientHeight < 48;
    pinnedRef.current = atEnd;
    setPinned(atEnd);
  };
  useLayoutEffect(() => {
    if (pinnedRef.current) toEnd();
  }, [messages, status, busyOffer]);
  useEffect(() => {
    // Charts and lazily rendered markdown change heights after the messages did.
    const element = list.current;
    if (!element) return;
    const observer = new ResizeObserver(() => {
      if (pinnedRef.current) toEnd();
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const composer = useRef<HTMLTextAreaElement>(null);
  /**
   * What every new turn does first: clear the offer and error, follow the reply, and remember the
   * typed text (`draft`) to give back to the composer if the thread turns out busy (a regenerate
   * typed nothing).
   */
  const beginTurn = (draft: string | null) => {
    setBusyOffer(null);
    setLocalError(null);
    pinnedRef.current = true;
    setPinned(true);
    lastSent.current = draft;
  };
  const send = (text: string) => {
    const question = text.trim();
    if (!question || busy) return;
    beginTurn(question);
    void sendMessage({ text: question });
    // Name an unnamed conversation after its first question.
    if (messages.length === 0 && props.title === DEFAULT_TITLE) {
      const title = question.length > 60 ? `${question.slice(0, 59)}…` : question;
      api.renameThread(props.threadId, { title }).then(props.onActivity, () => {});
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!input.trim() || busy) return;
    send(input);
    setInput("");
  };
  const onComposerKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) submit(event);
  };

  const idle = !busy && busyOffer === null;
  const lastIndex = messages.length - 1;
  /**
   * Regenerate the last reply: the SDK's `regenerate()` naming no message, which the brain reads
   * as its thread's last turn (a reply that failed before any output has no stored id to name).
   */
  const regenerateLast = () => {
    beginTurn(null);
    void regenerate();
  };
  /**
   * Send `edited` in place of the question at `index`; the SDK drops it and what followed from
   * the list, the brain from the thread. The brain knows the question by its stored id: the one
   * its reply's `start` named (`userMessageId`), else its own (a question loaded with the thread).
   */
  const editQuestion = (index: number, edited: string) => {
    const question = messages[index];
    if (!question || busy) return;
    const reply = messages[index + 1];
    const storedTurn = (reply?.role === "assistant" ? reply.metadata?.userMessageId : null) ?? question.id;
    beginTurn(edited);
    void sendMessage({ text: edited, messageId: question.id }, { body: { replace_from: storedTurn } });
  };
  // A 409 is handled by the offer below, never shown raw.
  const shownError = error && !(error instanceof ApiError && error.status === 409) ? error : null;
  const words = statusText(status, messages, stopping, reconnecting);
  const tool = runningTool(status, messages);

  return (
    <div className="conversation">
      <div className="conversation-bar">
        <button type="button" className="threads-toggle" onClick={props.onOpenThreads} aria-label="Show conversations">
          ☰
        </button>
        <span className="conversation-title">{props.title}</span>
        {props.agent ? (
          <span className="conversation-agent" data-testid="thread-agent">
            Agent: {props.agent}
          </span>
        ) : null}
      </div>
      <div className="message-pane" ref={pane} onScroll={onScroll} data-testid="message-pane">
        <ol className="messages" ref={list} aria-live="polite">
          {messages.map((message, index) => (
            <MessageView
              key={message.id}
              message={message}
              stopped={stopped.has(message.id)}
              onContinue={index === lastIndex && idle ? () => send(CONTINUE_TEXT) : null}
              onRetry={index === lastIndex && idle && message.role === "assistant" ? regenerateLast : null}
              onEdit={idle ? (edited) => editQuestion(index, edited) : null}
            />
          ))}
        </ol>
        {messages.length === 0 && idle ? (
          <div className="starters">
            <p className="muted">Ask about the sample data (stores, products, transactions) or your own datasets.</p>
            <ul>
              {STARTERS.map((starter) => (
                <li key={starter}>
                  <button type="button" className="starter" data-testid="starter" onClick={() => send(starter)}>
                    {starter}
                  </button>
                </li>
              ))}
            </ul>
          </div>
        ) : null}
      </div>
      {!pinned ? (
        <button
          type="button"
          className="to-latest"
          onClick={() => {
            pinnedRef.current = true;
            setPinned(true);
            toEnd();
          }}
        >
          ↓ Latest
        </button>
      ) : null}
      {busyOffer ? (
        <div className="busy-offer" role="alert" data-testid="busy-offer">
          <p>A reply is still being written in this conversation (in another tab or an earlier visit). Yours is kept below.</p>
          <div className="message-actions">
            <button type="button" onClick={waitForReply}>
              Wait for the reply
            </button>
            <button type="button" onClick={() => void stopOther()}>
              Stop it
            </button>
          </div>
        </div>
      ) : null}
      {shownError ? <ErrorLine error={shownError} reconnecting={reconnecting} /> : null}
      {localError ? (
        <p className="error chat-error" role="alert">
          {localError}
        </p>
      ) : null}
      <form className="composer" onSubmit={submit}>
        <textarea
          ref={composer}
          aria-label="Message"
          aria-describedby="composer-hint"
          placeholder="Ask a question…"
          value={input}
          rows={1}
          onChange={(event) => setInput(event.target.value)}
          onKeyDown={onComposerKey}
        />
        {busy ? (
          <button type="button" className="stop" onClick={() => void stopReply()} disabled={stopping}>
            {stopping ? "Stopping…" : "Stop"}
          </button>
        ) : (
          <button type="submit" disabled={!input.trim()}>
            Send
          </button>
        )}
      </form>
      <div className="status-row">
        <p className="status" data-testid="chat-status" data-state={status} data-tool={tool ?? undefined} role="status">
          {words}
        </p>
        <p className="hint muted" id="composer-hint">
          Enter sends · Shift+Enter new line · Esc stops
        </p>
      </div>
    </div>
  );
}

/** One thread: its stored history (and live reply, if any), then turns through useChat. */
export function ChatView(props: { threadId: string; title: string | null; agent: string | null; onActivity: () => void; onOpenThreads: () => void }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setLoaded(null);
    setError(null);
    loadThread(props.threadId)
      .then((result) => current && setLoaded(result))
      .catch((reason: unknown) => current && setError(errorText(reason)));
    return () => {
      current = false;
    };
  }, [props.threadId, attempt]);

  if (error) {
    return (
      <div className="conversation empty">
        <p className="error" role="alert">
          The conversation could not be loaded: {error}
        </p>
        <button type="button" onClick={() => setAttempt((n) => n + 1)}>
          Try again
        </button>
      </div>
    );
  }
  if (!loaded) {
    return (
      <div className="conversation empty" aria-busy="true">
        <p className="muted" role="status">
          Loading the conversation…
        </p>
      </div>
    );
  }
  return (
    <Conversation
      key={props.threadId}
      threadId={props.threadId}
      title={props.title}
      agent={props.agent}
      initial={loaded}
      onActivity={props.onActivity}
      onOpenThreads={props.onOpenThreads}
    />
  );
}
