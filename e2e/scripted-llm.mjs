// A scripted OpenAI-compatible chat server for the web and Vercel end-to-end tests: a real HTTP
// server on 127.0.0.1 speaking `POST /v1/chat/completions` with SSE streaming, whose answers
// are written in advance so the tests are deterministic. It is test infrastructure for the web
// app and the edge, not a model under test (the brain's own tests use a real local model).
//
// Model `scripted-agent` (offered tools): first a `sql` tool call over the sample data, then,
// after its result, a `chart` tool call, then a streamed text answer. Model `scripted-text`:
// only the streamed text answer — after a `describe_dataset` call when a tool is required. Text deltas are paced (DELTA_INTERVAL_MS) so a client can
// watch the answer grow. Some questions (the last user message) have scripts of their own:
// - PROMOTION_QUESTION / INVENTED_QUESTION: a `sql` call counting promoted transactions, then
//   an answer stating the count the tool returned (grounded) or a made-up one (not grounded);
// - ASSUMED_QUESTION: a `sql` call counting one region's stores (ASSUMED_SQL), then an answer
//   stating that count as the region with the most (the query's numbers, an unasked filter);
// - LONG_QUESTION: text that stops at the output limit (`finish_reason: "length"`);
// - CONTINUE_TEXT: the rest of that text;
// - SLOW_QUESTION: a long text, paced, so a client can stop it, reload or open a second tab
//   while it is being written (SLOW_CHUNKS: every piece distinct, duplicates would show);
// - MARKDOWN_QUESTION: markdown (a table, SQL in a code fence, numbers) with HTML that must not
//   run (MARKDOWN_ANSWER);
// - SLOW_TOOL_QUESTION: a pause before anything (the reply is "Thinking…"), then a `sql` call
//   whose input is written slowly (the reply is "Running SQL…"), then a short answer;
// - questions whose last line starts "Turn " (one line, or several typed with Shift+Enter): a
//   short answer of a few lines at once (quickAnswer);
// - KNOWLEDGE_QUESTION (an agent with `search_knowledge`): a search of the documents, then an
//   answer naming the document the best hit came from (the brain cites the hits);
// - ESCALATION_QUESTION (an agent with `escalate_to_human`, SUPPORT_AGENT): a hand-over to a
//   person (ESCALATION_REASON, high urgency), then a short answer saying so.
// It also serves `POST /v1/embeddings` (the knowledge base's embedder in these tests): a hashed
// bag of words, so passages sharing words with a question are near it (cosine), deterministically.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

// More rows than the brain states itself after an answer that leaves their numbers out (10):
// the web tests compare the reply's text with ANSWER.
export const SAMPLE_SQL =
  "SELECT store_id, SUM(quantity) AS units FROM transactions GROUP BY store_id ORDER BY store_id LIMIT 20";
export const CHART_INPUT = { sql: SAMPLE_SQL, mark: "bar", x: "store_id", y: "units", title: "Units sold per store" };
export const ANSWER_CHUNKS = ["Units ", "per store ", "are in the ", "table above, ", "and the chart ", "draws them."];
export const ANSWER = ANSWER_CHUNKS.join("");
const DELTA_INTERVAL_MS = 150;

export const PROMOTION_QUESTION = "How many transactions used a promotion?";
export const INVENTED_QUESTION = "How many transactions used a coupon?";
export const PROMOTION_SQL = "SELECT COUNT(*) AS promotions FROM transactions WHERE promotion";
/** A question the scripted model answers with a query filtered by a word it never named. */
export const ASSUMED_QUESTION = "Which region has the most stores?";
export const ASSUMED_SQL = "SELECT COUNT(*) AS stores FROM stores WHERE region = 'north'";
/** The number the scripted model invents for INVENTED_QUESTION (the sample never has it). */
export const INVENTED_COUNT = "470.71";
export const LONG_QUESTION = "Describe every store in detail.";
export const CUT_OFF_CHUNKS = ["Store 1 is in Berlin, ", "has a floor area of 1,2"];
/** What the web app sends when the reader asks a cut-off reply to go on. */
export const CONTINUE_TEXT = "Continue.";
export const CONTINUED_ANSWER = "That is all about the stores.";
export const SLOW_QUESTION = "Tell me the long story of the stores.";
export const SLOW_CHUNKS = Array.from({ length: 30 }, (_, i) => `Part ${i + 1} of the story. `);
export const SLOW_ANSWER = SLOW_CHUNKS.join("");
export const MARKDOWN_QUESTION = "Show the units per store as a markdown table.";
export const MARKDOWN_ANSWER = [
  "Units per store:\n\n",
  "| Store | Units |\n|---|---:|\n| Berlin | 1234567 |\n| Paris | 24.68603087 |\n\n",
  "The query:\n\n```sql\nSELECT store_id, SUM(quantity) AS units FROM transactions GROUP BY store_id\n```\n\n",
  "Average basket: 24.68603087 units over 1234567 transactions in 2025.\n\n",
  '<script>window.__xss = "script"</script><img src="x" onerror="window.__xss = \'img\'">',
  '[link](javascript:window.__xss=1)',
].join("");
export const SLOW_TOOL_QUESTION = "Which store sold the most units? Take your time.";
export const SLOW_TOOL_ANSWER = "The first store in the table sold the most units.";
/** How long the model "thinks" before its first chunk, and writes its `sql` call's input. */
const THINKING_MS = 1_000;
const SLOW_TOOL_INPUT_MS = 1_500;
/** A question the default agent answers from the documents (the words of RETURNS_PASSAGE). */
export const KNOWLEDGE_QUESTION = "Within how many days can opened electronics be returned for a refund?";
export const KNOWLEDGE_QUERY = "returned opened electronics refund days";
/** The answer's words before the cited document's name. */
export const KNOWLEDGE_ANSWER_PREFIX = "Opened electronics can be returned for a refund within thirty days, says ";
/** A question the support agent hands to a person. */
export const ESCALATION_QUESTION = "I want to talk to a person about my broken blender.";
export const ESCALATION_REASON = "The customer asks for a person about a broken blender.";
export const ESCALATION_ANSWER = "I have asked a colleague to take over; a person will answer here soon.";
/** The non-default agent of SUPPORT_AGENTS_TOML: it may hand a conversation to a person. */
export const SUPPORT_AGENT = "support-desk";

/** The scripted model's answer to a "Turn …" question: a few short lines, unpaced. */
export function quickAnswer(question) {
  return `Answer to "${question}":\n\n- one\n- two\n- three`;
}

function chunk(delta, finishReason = null) {
  return { id: "chatcmpl-scripted", object: "chat.completion.chunk", model: "scripted", choices: [{ index: 0, delta, finish_reason: finishReason }] };
}

function toolCall(id, name, input) {
  return [
    chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(input) } }] }),
    chunk({}, "tool_calls"),
  ];
}

function text(chunks, finishReason = "stop", paced = true) {
  const events = [chunk({ role: "assistant", content: "" })];
  for (const piece of chunks) events.push(chunk({ content: piece }));
  events.push(chunk({}, finishReason));
  return { events, paced };
}

function contentOf(message) {
  if (typeof message?.content === "string") return message.content;
  if (Array.isArray(message?.content)) return message.content.map((part) => part.text ?? "").join("");
  return "";
}

/** The events (and pacing) of one completion, from the request the brain sent. */
function script(body) {
  const messages = body.messages ?? [];
  const tools = (body.tools ?? []).map((tool) => tool.function?.name);
  const toolMessages = messages.filter((message) => message.role === "tool");
  const question = contentOf(messages.filter((message) => message.role === "user").at(-1));
  const turnQuestion = (question.split("\n").at(-1) ?? "").startsWith("Turn ");
  const textQuestion = [LONG_QUESTION, CONTINUE_TEXT, SLOW_QUESTION, MARKDOWN_QUESTION].includes(question) || turnQuestion;
  const agentFlow = body.model === "scripted-agent" && tools.length > 0 && !textQuestion;
  // Like any OpenAI-compatible server, it honours `tool_choice: "required"` (the brain's default
  // agent requires a tool on its first call): with nothing else to call, it looks at a dataset.
  if (body.tool_choice === "required" && tools.includes("describe_dataset") && toolMessages.length === 0 && !agentFlow) {
    return { events: toolCall("call_describe", "describe_dataset", { dataset: "stores" }), paced: false };
  }
  if (question === LONG_QUESTION) return text(CUT_OFF_CHUNKS, "length");
  if (question === CONTINUE_TEXT) return text([CONTINUED_ANSWER]);
  if (question === SLOW_QUESTION) return text(SLOW_CHUNKS);
  if (question === MARKDOWN_QUESTION) return text([MARKDOWN_ANSWER.slice(0, 40), MARKDOWN_ANSWER.slice(40)]);
  if (turnQuestion) return text([quickAnswer(question)], "stop", false);
  if (body.model === "scripted-agent" && question === KNOWLEDGE_QUESTION && tools.includes("search_knowledge")) {
    if (toolMessages.length === 0) return { events: toolCall("call_search", "search_knowledge", { query: KNOWLEDGE_QUERY }), paced: false };
    const best = JSON.parse(contentOf(toolMessages[0])).hits?.[0];
    return text([KNOWLEDGE_ANSWER_PREFIX, `${best?.document_name ?? "no document"}.`]);
  }
  if (body.model === "scripted-agent" && question === ESCALATION_QUESTION && tools.includes("escalate_to_human")) {
    if (toolMessages.length === 0) {
      return { events: toolCall("call_escalate", "escalate_to_human", { reason: ESCALATION_REASON, urgency: "high" }), paced: false };
    }
    return text([ESCALATION_ANSWER]);
  }
  if (body.model === "scripted-agent" && tools.length > 0) {
    if (question === PROMOTION_QUESTION || question === INVENTED_QUESTION) {
      if (toolMessages.length === 0) return { events: toolCall("call_promotions", "sql", { sql: PROMOTION_SQL }), paced: false };
      const count = JSON.parse(contentOf(toolMessages[0])).rows?.[0]?.promotions;
      const stated = question === PROMOTION_QUESTION ? Number(count).toLocaleString("en-US") : INVENTED_COUNT;
      return text([`${stated} transactions `, "used a promotion."]);
    }
    if (question === SLOW_TOOL_QUESTION) {
      if (toolMessages.length > 0) return text([SLOW_TOOL_ANSWER]);
      const [start, input, finish] = toolCall("call_slow", "sql", { sql: SAMPLE_SQL });
      return { events: [{ pauseMs: THINKING_MS }, start, { pauseMs: SLOW_TOOL_INPUT_MS }, input, finish], paced: false };
    }
    if (question === ASSUMED_QUESTION) {
      if (toolMessages.length === 0) return { events: toolCall("call_assumed", "sql", { sql: ASSUMED_SQL }), paced: false };
      const count = JSON.parse(contentOf(toolMessages[0])).rows?.[0]?.stores;
      return text([`The north region has the most stores: ${count}.`]);
    }
    if (toolMessages.length === 0) return { events: toolCall("call_sql", "sql", { sql: SAMPLE_SQL }), paced: false };
    if (toolMessages.length === 1) return { events: toolCall("call_chart", "chart", CHART_INPUT), paced: false };
  }
  return text(ANSWER_CHUNKS);
}

const EMBEDDING_DIMENSIONS = 256;

/**
 * A text's embedding: the words of four letters or more it contains (short words are the glue
 * every passage shares), each marking one of EMBEDDING_DIMENSIONS buckets by an FNV-1a hash
 * (presence, not counts: a word repeated all over a passage does not drown the others). The
 * brain normalises it, so the cosine of two texts grows with the words they share.
 */
export function embed(text) {
  const vector = new Array(EMBEDDING_DIMENSIONS).fill(0);
  for (const word of text.toLowerCase().match(/\p{L}{4,}/gu) ?? []) {
    let hash = 0x811c9dc5;
    for (const char of word) hash = Math.imul(hash ^ char.codePointAt(0), 0x01000193) >>> 0;
    vector[hash % EMBEDDING_DIMENSIONS] = 1;
  }
  // Never the zero vector (a text without long words).
  vector[0] += 0.01;
  return vector;
}

/** `POST /v1/embeddings` as OpenAI answers it. */
function embeddings(request, response) {
  let raw = "";
  request.setEncoding("utf8");
  request.on("data", (data) => (raw += data));
  request.on("end", () => {
    let input;
    try {
      input = JSON.parse(raw).input;
    } catch {
      response.writeHead(400, { "content-type": "application/json" }).end('{"error":{"message":"bad json"}}');
      return;
    }
    const texts = Array.isArray(input) ? input : [input];
    const data = texts.map((text, index) => ({ object: "embedding", index, embedding: embed(String(text)) }));
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data, model: "scripted-embed" }));
  });
}

/** The brain's variables for a knowledge base embedded by this server (at `baseUrl`, …/v1). */
export function scriptedEmbedderEnv(baseUrl) {
  return { BRAIN_KNOWLEDGE_EMBEDDER: "openai-compatible", BRAIN_EMBEDDINGS_URL: baseUrl, BRAIN_EMBEDDINGS_MODEL: "scripted-embed" };
}

/**
 * An agents file (brain `--agents-config`): the built-in agents (brain/agents/default.toml, its
 * default agent stays the default) and SUPPORT_AGENT, which may hand a conversation to a person.
 */
export function supportAgentsToml() {
  const builtIn = readFileSync(new URL("../brain/agents/default.toml", import.meta.url), "utf8");
  return `${builtIn}
[[agents]]
name = "${SUPPORT_AGENT}"
description = "A support desk that hands conversations to a person when asked."
tools = ["escalate_to_human", "search_knowledge"]
tool_choice = "auto"
system_prompt = "You are a support desk. When the user asks for a person, call escalate_to_human."
`;
}

export function startScriptedLlm() {
  const requests = [];
  const server = createServer((request, response) => {
    if (request.method === "POST" && request.url === "/v1/embeddings") {
      embeddings(request, response);
      return;
    }
    if (request.method !== "POST" || request.url !== "/v1/chat/completions") {
      response.writeHead(404, { "content-type": "application/json" }).end('{"error":{"message":"not found"}}');
      return;
    }
    let raw = "";
    request.setEncoding("utf8");
    request.on("data", (data) => (raw += data));
    request.on("end", async () => {
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        response.writeHead(400, { "content-type": "application/json" }).end('{"error":{"message":"bad json"}}');
        return;
      }
      requests.push(body);
      const { events, paced } = script(body);
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      for (const event of events) {
        if (response.destroyed) return;
        // A scripted pause (thinking, or writing a tool call's input slowly).
        if (event.pauseMs) {
          await new Promise((resolve) => setTimeout(resolve, event.pauseMs));
          continue;
        }
        response.write(`data: ${JSON.stringify(event)}\n\n`);
        // The scripted model's pace of writing, so clients see the text arrive piece by piece.
        if (paced) await new Promise((resolve) => setTimeout(resolve, DELTA_INTERVAL_MS));
      }
      response.write(`data: ${JSON.stringify({ id: "chatcmpl-scripted", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 50, completion_tokens: 12, total_tokens: 62 } })}\n\n`);
      response.end("data: [DONE]\n\n");
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        requests,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

/**
 * An LLM config file (brain `--llm-config`) routing model `scripted` (the default, with tools) to
 * the server as `providerModel`, and model `scripted-plain` to its text answers without tools.
 */
export function scriptedLlmConfig(baseUrl, providerModel) {
  return `default_model = "scripted"

[[providers]]
name = "scripted"
kind = "openai-compatible"
base_url = "${baseUrl}"
max_retries = 0
tokenizer = "estimate"

[[models]]
name = "scripted"
route = [ { provider = "scripted", model = "${providerModel}" } ]
context_tokens = 16000
max_output_tokens = 512
tools = true

[[models]]
name = "scripted-plain"
route = [ { provider = "scripted", model = "scripted-text" } ]
context_tokens = 16000
max_output_tokens = 512
tools = false
`;
}
