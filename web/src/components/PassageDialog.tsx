import { useEffect, useRef } from "react";
import { DocumentText, type Passage } from "./DocumentText";

/** The cited passage in its document, in a modal dialog (Escape or Close closes it). */
export function PassageDialog(props: { documentId: string; documentName: string; passage: Passage; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
  }, []);
  return (
    <dialog ref={dialog} className="passage-dialog" aria-labelledby="passage-title" onClose={props.onClose} data-testid="passage-dialog">
      <div className="dialog-head">
        <h2 id="passage-title">{props.documentName}</h2>
        <button type="button" onClick={() => dialog.current?.close()} autoFocus>
          Close
        </button>
      </div>
      <DocumentText documentId={props.documentId} passage={props.passage} label={`Text of ${props.documentName}`} />
    </dialog>
  );
}
