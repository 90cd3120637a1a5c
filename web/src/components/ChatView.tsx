import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type DynamicToolUIPart, type UIMessage } from "ai";
import { useEffect, useMemo, useState, type FormEvent } from "react";
import type { GroundingReport, Message, Notice, Provenance as ProvenanceData, RunMessageMetadata } from "@edgebrain/types";
import { api, authHeaders, errorText } from "../api";
import { AnswerNotice, CutOff, Grounding } from "./AnswerNotes";
import { Provenance, type Evidence } from "./Provenance";
import { ToolResult } from "./ToolResult";

/** The brain's `data-*` parts (shared_types::chat::UiMessageChunk) by name. */
type DataParts = { provenance: ProvenanceData; grounding: GroundingReport; notice: Notice };
/** A message of this app: the finish chunk's metadata, edgebrain's data parts. */
type ChatMessage = UIMessage<RunMessageMetadata, DataParts>;

/** What a reply says when the reader asks a cut-off reply to go on. */
const CONTINUE_TEXT = "Continue.";

/** Stored messages are already shaped like the AI SDK's UIMessage (shared_types::chat::Message). */
function toUiMessage(message: Message): ChatMessage {
  const parts = message.parts as ChatMessage["parts"];
  return message.metadata ? { id: message.id, role: message.role, parts, metadata: message.metadata } : { id: message.id, role: message.role, parts };
}

function MessageView(props: { message: ChatMessage; onContinue: (() => void) | null }) {
  const { message } = props;
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
  return (
    <li className={`message ${message.role}`} data-testid={`message-${message.role}`}>
      {notices.map((notice, index) => (
        <AnswerNotice key={index} notice={notice} />
      ))}
      {message.parts.map((part, index) => {
        switch (part.type) {
          case "text":
            return (
              <p key={index} className="text" data-testid="message-text">
                {part.text}
              </p>
            );
          case "dynamic-tool":
            return explained.has(part.toolCallId) ? null : <ToolResult key={index} part={part} />;
          default:
            return null;
        }
      })}
      {message.metadata?.finishReason === "length" ? <CutOff onContinue={props.onContinue} /> : null}
      {evidence.length > 0 ? <Provenance evidence={evidence} /> : null}
      {grounding ? <Grounding report={grounding} /> : null}
    </li>
  );
}

/** The brain's title of a thread nobody named yet (shared by `POST /api/v1/threads`). */
const DEFAULT_TITLE = "New conversation";

function Conversation(props: { threadId: string; title: string | null; initial: Array<ChatMessage>; onActivity: () => void }) {
  const transport = useMemo(
    () =>
      new DefaultChatTransport<ChatMessage>({
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
  const { messages, sendMessage, status, error, stop } = useChat<ChatMessage>({
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
        {messages.map((message, index) => (
          <MessageView
            key={message.id}
            message={message}
            onContinue={index === messages.length - 1 && !busy ? () => void sendMessage({ text: CONTINUE_TEXT }) : null}
          />
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
  const [initial, setInitial] = useState<Array<ChatMessage> | null>(null);
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
