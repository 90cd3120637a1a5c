import { useEffect, useRef, useState } from "react";
import type { JsonValue } from "@edgebrain/types";
import { ScrollRegion } from "./ScrollRegion";

/**
 * Renders a Vega-Lite spec (as the agent's `chart` tool produces it, data inline) with
 * vega-embed, loaded on first use so the chat shell does not carry vega's weight.
 */
export function Chart(props: { spec: JsonValue }) {
  const target = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const element = target.current;
    if (!element) return;
    let finalize: (() => void) | undefined;
    let cancelled = false;
    import("vega-embed")
      .then(async ({ default: embed }) => {
        if (cancelled) return;
        // The spec comes from the brain; vega-embed validates it and renders as SVG.
        const spec = props.spec as Parameters<typeof embed>[1];
        const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
        const result = await embed(element, spec, { actions: false, renderer: "svg", mode: "vega-lite", ...(dark ? { theme: "dark" as const } : {}) });
        if (cancelled) result.finalize();
        else finalize = () => result.finalize();
      })
      .catch((reason: unknown) => {
        if (!cancelled) setError(reason instanceof Error ? reason.message : String(reason));
      });
    return () => {
      cancelled = true;
      finalize?.();
    };
  }, [props.spec]);

  return (
    <figure className="chart" data-testid="chart">
      <ScrollRegion className="chart-scroll" label="Chart">
        <div ref={target} />
      </ScrollRegion>
      {error ? <figcaption className="error">chart could not be drawn: {error}</figcaption> : null}
    </figure>
  );
}
