/// <reference types="highlight.js" />
// The markdown renderer of assistant text: a chunk of its own, loaded on the first reply
// (MessageText shows plain text until then). Model text is untrusted: react-markdown builds
// React elements (never innerHTML), raw HTML in the text stays text, and rehype-sanitize
// (GitHub's schema) runs before the two plugins of this file, which only add what they make
// themselves: highlighted code (lowlight = highlight.js on the syntax tree) and numbers in the
// reader's locale (the raw number kept in `data-raw` and the tooltip).
import type { Element, ElementContent, Root, Text } from "hast";
import { createLowlight } from "lowlight";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import yaml from "highlight.js/lib/languages/yaml";
import ReactMarkdown from "react-markdown";
import rehypeSanitize from "rehype-sanitize";
import remarkGfm from "remark-gfm";
import { SKIP, visit } from "unist-util-visit";
import { PROSE_NUMBER, formatProseNumber } from "../numbers";
import { ScrollRegion } from "./ScrollRegion";

const lowlight = createLowlight({ bash, javascript, json, python, sql, typescript, yaml });
lowlight.registerAlias({ bash: ["sh", "shell", "console"], javascript: ["js"], typescript: ["ts"], yaml: ["yml"] });

function classes(node: Element): Array<string> {
  const value: unknown = node.properties["className"];
  if (Array.isArray(value)) return value.map(String);
  return typeof value === "string" ? value.split(" ") : [];
}

/** Highlights fenced code whose language lowlight knows (`language-sql`, …). */
function rehypeHighlightCode() {
  return (tree: Root) => {
    visit(tree, "element", (node, _index, parent) => {
      if (node.tagName !== "code" || !parent || parent.type !== "element" || parent.tagName !== "pre") return;
      const language = classes(node)
        .find((name) => name.startsWith("language-"))
        ?.slice("language-".length);
      if (!language || !lowlight.registered(language)) return;
      const text = node.children.map((child) => (child.type === "text" ? child.value : "")).join("");
      node.children = lowlight.highlight(language, text).children as Array<ElementContent>;
      node.properties["className"] = [...classes(node), "hljs"];
      return SKIP;
    });
  };
}

/** Prose numbers in the reader's locale: `<span class="num" data-raw="…" title="…">`. */
function rehypeLocaleNumbers() {
  return (tree: Root) => {
    visit(tree, "element", (node) => {
      if (node.tagName === "code" || node.tagName === "pre") return SKIP;
      const children: Array<ElementContent> = [];
      let changed = false;
      for (const child of node.children) {
        if (child.type !== "text") {
          children.push(child);
          continue;
        }
        let last = 0;
        for (const match of child.value.matchAll(PROSE_NUMBER)) {
          const raw = match[0];
          const formatted = formatProseNumber(raw);
          if (formatted === null) continue;
          if (match.index > last) children.push({ type: "text", value: child.value.slice(last, match.index) } satisfies Text);
          children.push({
            type: "element",
            tagName: "span",
            properties: { className: ["num"], dataRaw: raw, title: raw },
            children: [{ type: "text", value: formatted }],
          });
          last = match.index + raw.length;
          changed = true;
        }
        if (last === 0) children.push(child);
        else if (last < child.value.length) children.push({ type: "text", value: child.value.slice(last) });
      }
      if (changed) node.children = children;
      return undefined;
    });
  };
}

const REMARK = [remarkGfm];
const REHYPE = [rehypeSanitize, rehypeHighlightCode, rehypeLocaleNumbers];

export default function Markdown(props: { text: string }) {
  return (
    <ReactMarkdown
      remarkPlugins={REMARK}
      rehypePlugins={REHYPE}
      components={{
        // Links from model text open elsewhere and carry no referrer.
        a: ({ node: _node, ...rest }) => <a {...rest} target="_blank" rel="noopener noreferrer nofollow" />,
        table: ({ node: _node, ...rest }) => (
          <ScrollRegion className="table-wrap" label="Table">
            <table {...rest} />
          </ScrollRegion>
        ),
        pre: ({ node: _node, children }) => (
          <ScrollRegion as="pre" label="Code">
            {children}
          </ScrollRegion>
        ),
      }}
    >
      {props.text}
    </ReactMarkdown>
  );
}
