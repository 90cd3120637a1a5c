import { useEffect, useRef, useState, type ReactNode } from "react";
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
  const newThread = useRef<HTMLButtonElement>(null);
  const { open } = props;
  // The latest onClose, without re-running the effect below on every render of the parent.
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;

  // The drawer takes the focus when it opens (so Tab walks through it) and gives it back to
  // where it was when it closes; Escape closes it wherever the focus is.
  useEffect(() => {
    if (!open) return;
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    newThread.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose.current();
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      if (before?.isConnected) before.focus();
    };
  }, [open]);

  return (
    <nav className={`threads${open ? " open" : ""}`} aria-label="Conversations">
      <div className="threads-head">
        <button type="button" className="new-thread" ref={newThread} onClick={props.onCreate}>
          + New conversation
        </button>
        <button type="button" className="icon close-drawer" aria-label="Close conversations" onClick={() => onClose.current()}>
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
