import { useState, type ReactNode } from "react";
import type { Thread } from "@edgebrain/types";

export function ThreadList(props: {
  /** Shown as a drawer (narrow screens only; always shown on wide ones). */
  open: boolean;
  onClose: () => void;
  threads: Array<Thread>;
  current: string | null;
  onSelect: (id: string) => void;
  onCreate: () => void;
  /** The choice of agent for the next new conversation, under the button. */
  agentPicker?: ReactNode;
  onRename: (id: string, title: string) => void;
  onDelete: (id: string) => void;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  const [title, setTitle] = useState("");

  return (
    <nav
      className={`threads${props.open ? " open" : ""}`}
      aria-label="Conversations"
      onKeyDown={(event) => {
        if (event.key === "Escape") props.onClose();
      }}
    >
      <div className="threads-head">
        <button type="button" className="new-thread" onClick={props.onCreate}>
          + New conversation
        </button>
        <button type="button" className="icon close-drawer" aria-label="Close conversations" onClick={props.onClose}>
          ✕
        </button>
      </div>
      {props.agentPicker}
      {props.threads.length === 0 ? <p className="muted">No conversations yet.</p> : null}
      <ul>
        {props.threads.map((thread) => (
          <li key={thread.id} className={thread.id === props.current ? "current" : ""} data-testid="thread">
            {editing === thread.id ? (
              <form
                onSubmit={(event) => {
                  event.preventDefault();
                  if (title.trim()) props.onRename(thread.id, title.trim());
                  setEditing(null);
                }}
              >
                <input aria-label="Conversation title" value={title} autoFocus onChange={(event) => setTitle(event.target.value)} />
                <button type="submit">Save</button>
              </form>
            ) : (
              <>
                <button type="button" className="thread-title" onClick={() => props.onSelect(thread.id)} title={thread.title}>
                  {thread.title}
                </button>
                <button
                  type="button"
                  className="icon"
                  aria-label={`Rename ${thread.title}`}
                  onClick={() => {
                    setEditing(thread.id);
                    setTitle(thread.title);
                  }}
                >
                  ✎
                </button>
                <button
                  type="button"
                  className="icon"
                  aria-label={`Delete ${thread.title}`}
                  onClick={() => {
                    if (window.confirm(`Delete "${thread.title}"?`)) props.onDelete(thread.id);
                  }}
                >
                  ✕
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
    </nav>
  );
}
