import { useState } from "react";
import type { Thread } from "@edgebrain/types";

export function ThreadList(props: {
  threads: Array<Thread>;
  current: string | null;
  onSelect: (id: string) => void;
  onCreate: () => void;
  onRename: (id: string, title: string) => void;
  onDelete: (id: string) => void;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  const [title, setTitle] = useState("");

  return (
    <nav className="threads" aria-label="Conversations">
      <button type="button" className="new-thread" onClick={props.onCreate}>
        + New conversation
      </button>
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
