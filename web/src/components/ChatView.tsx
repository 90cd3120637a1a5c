import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type DynamicToolUIPart, type UIMessage } from "ai";
import { useEffect, useMemo, useState, type FormEvent } from "react";
import type { JsonValue, Message } from "@edgebrain/types";
import { api, authHeaders, errorText } from "../api";
import { Chart } from "./Chart";
import { DataTable } from "./DataTable";

type Row = { [key in string]?: JsonValue };

/** Stored messages are already shaped like the AI SDK's UIMessage (shared_types::chat::Message). */
function toUiMessage(message: Message): UIMessage {
  return { id: message.id, role: message.role, parts: message.parts as UIMessage["parts"] };
}

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rowsOf(output: unknown): { rows: Array<Row>; columns?: Array<string> } | null {
  if (!isObject(output)) return null;
  const rows = output["rows"];
  if (!Array.isArray(rows) || !rows.every(isObject)) return null;
  const columns = output["columns"];
  const names = Array.isArray(columns)
    ? columns.map((column: unknown) => (isObject(column) && typeof column["name"] === "string" ? column["name"] : String(column)))
    : undefined;
  return names ? { rows: rows as Array<Row>, columns: names } : { rows: rows as Array<Row> };
}

function ToolPart(props: { part: DynamicToolUIPart }) {
  const { part } = props;
  const label = <div className="tool-label">tool: {part.toolName}</div>;
  if (part.state === "output-error") {
    return (
      <div className="tool tool-error" data-testid={`tool-${part.toolName}`}>
        {label}
        <p className="error">{part.errorText}</p>
      </div>
    );
  }
  if (part.state !== "output-available") {
    return (
      <div className="tool" data-testid={`tool-${part.toolName}`}>
        {label}
        <p className="muted">running…</p>
      </div>
    );
  }
  const output: unknown = part.output;
  if (part.toolName === "chart" && isObject(output) && isObject(output["spec"])) {
    return (
      <div className="tool" data-testid="tool-chart">
        {label}
        <Chart spec={output["spec"] as JsonValue} />
        {output["truncated"] === true ? <p className="muted">the chart shows the first {String(output["rows"])} rows</p> : null}
      </div>
    );
  }
  const table = rowsOf(output);
  if (table) {
    return (
      <div className="tool" data-testid={`tool-${part.toolName}`}>
        {label}
        <DataTable rows={table.rows} {...(table.columns ? { columns: table.columns } : {})} testId="tool-table" />
      </div>
    );
  }
  return (
    <div className="tool" data-testid={`tool-${part.toolName}`}>
      {label}
      <pre>{JSON.stringify(output, null, 2)}</pre>
    </div>
  );
}

function MessageView(props: { message: UIMessage }) {
  const { message } = props;
  return (
    <li className={`message ${message.role}`} data-testid={`message-${message.role}`}>
      {message.parts.map((part, index) => {
        switch (part.type) {
          case "text":
            return (
              <p key={index} className="text" data-testid="message-text">
                {part.text}
              </p>
            );
          case "dynamic-tool":
            return <ToolPart key={index} part={part} />;
          default:
            return null;
        }
      })}
    </li>
  );
}

/** The brain's title of a thread nobody named yet (shared by `POST /api/v1/threads`). */
const DEFAULT_TITLE = "New conversation";

function Conversation(props: { threadId: string; title: string | null; initial: Array<UIMessage>; onActivity: () => void }) {
  const transport = useMemo(
    () =>
      new DefaultChatTransport<UIMessage>({
        api: `/api/v1/threads/${encodeURIComponent(props.threadId)}/messages`,
        credentials: "same-origin",
        headers: () => authHeaders(),
        // The brain keeps the thread's history; send only the new user message.
        prepareSendMessagesRequest: ({ messages, body }) => ({
          body: { ...body, messages: messages.slice(-1) },
        }),
      }),
    [props.threadId],
  );
  const { messages, sendMessage, status, error, stop } = useChat({
    id: props.threadId,
    messages: props.initial,
    transport,
    onFinish: () => props.onActivity(),
  });
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const text = input.trim();
    if (!text || busy) return;
    setInput("");
    void sendMessage({ text });
    // Name an unnamed conversation after its first question.
    if (messages.length === 0 && props.title === DEFAULT_TITLE) {
      const title = text.length > 60 ? `${text.slice(0, 59)}…` : text;
      api.renameThread(props.threadId, { title }).then(props.onActivity, () => {});
    }
  };

  return (
    <div className="conversation">
      <ol className="messages" aria-live="polite">
        {messages.map((message) => (
          <MessageView key={message.id} message={message} />
        ))}
        {messages.length === 0 ? <li className="muted">Ask about the sample data (stores, products, transactions) or your own datasets.</li> : null}
      </ol>
      {error ? <p className="error" role="alert">{error.message}</p> : null}
      <form className="composer" onSubmit={submit}>
        <textarea
          aria-label="Message"
          placeholder="Ask a question…"
          value={input}
          rows={2}
          onChange={(event) => setInput(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.shiftKey) submit(event);
          }}
        />
        {busy ? (
          <button type="button" onClick={() => void stop()}>
            Stop
          </button>
        ) : (
          <button type="submit" disabled={!input.trim()}>
            Send
          </button>
        )}
      </form>
      <p className="status muted" data-testid="chat-status">
        {status}
      </p>
    </div>
  );
}

/** One thread: its stored history, then live turns through useChat. */
export function ChatView(props: { threadId: string; title: string | null; onActivity: () => void }) {
  const [initial, setInitial] = useState<Array<UIMessage> | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    setInitial(null);
    setError(null);
    api
      .allMessages(props.threadId)
      .then((stored) => current && setInitial(stored.map(toUiMessage)))
      .catch((reason: unknown) => current && setError(errorText(reason)));
    return () => {
      current = false;
    };
  }, [props.threadId]);

  if (error) return <p className="error">{error}</p>;
  if (!initial) return <p className="muted">Loading…</p>;
  return <Conversation key={props.threadId} threadId={props.threadId} title={props.title} initial={initial} onActivity={props.onActivity} />;
}
