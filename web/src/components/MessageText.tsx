import { Component, Suspense, lazy, type ReactNode } from "react";

// The markdown renderer (react-markdown, remark-gfm, rehype-sanitize, lowlight) is its own chunk.
const Markdown = lazy(() => import("./Markdown"));

/** Plain text: what the reader sees until the renderer has loaded, or if it cannot load. */
function Plain(props: { text: string }) {
  return <p className="plain">{props.text}</p>;
}

class Fallback extends Component<{ text: string; children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };
  static getDerivedStateFromError() {
    return { failed: true };
  }
  override render() {
    return this.state.failed ? <Plain text={this.props.text} /> : this.props.children;
  }
}

/**
 * One text part of an assistant reply, rendered as markdown. `data-raw` keeps the text exactly as
 * the model wrote it (numbers unformatted), for copying and for tests comparing numbers.
 */
export function MessageText(props: { text: string }) {
  return (
    <div className="text markdown" data-testid="message-text" data-raw={props.text}>
      <Fallback text={props.text}>
        <Suspense fallback={<Plain text={props.text} />}>
          <Markdown text={props.text} />
        </Suspense>
      </Fallback>
    </div>
  );
}

/** Warms the renderer's chunk up before the first reply needs it. */
export function preloadMarkdown(): void {
  void import("./Markdown");
}
