import { createElement, useEffect, useLayoutEffect, useRef, useState, type HTMLAttributes, type ReactNode } from "react";

type Props = HTMLAttributes<HTMLElement> & {
  /** The element to render (a `pre` for code). */
  as?: "div" | "pre";
  /** The region's name while it scrolls ("Table", "Code", "Chart"). */
  label: string;
  children: ReactNode;
  "data-testid"?: string | undefined;
};

/**
 * A box that scrolls what does not fit in it. Only while something overflows is it a named
 * focusable group (`tabIndex` 0), so keyboard users can reach it and scroll it with the arrow
 * keys, while a box that fits adds no stop to the Tab order (axe: scrollable-region-focusable).
 */
export function ScrollRegion(props: Props) {
  const { as = "div", label, children, ...rest } = props;
  const box = useRef<HTMLElement>(null);
  const [scrolls, setScrolls] = useState(false);
  const measure = () => {
    const element = box.current;
    if (element) setScrolls(element.scrollWidth > element.clientWidth + 1 || element.scrollHeight > element.clientHeight + 1);
  };
  // After every render (its content may have grown) and whenever it or its content is resized.
  useLayoutEffect(measure);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    for (const child of Array.from(element.children)) observer.observe(child);
    return () => observer.disconnect();
  }, []);
  // A named group rather than a region: replies may hold many, and landmarks should be few.
  const focusable = scrolls ? { tabIndex: 0, role: "group", "aria-label": label } : {};
  return createElement(as, { ...rest, ...focusable, ref: box }, children);
}
