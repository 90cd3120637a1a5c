// A scripted OpenAI-compatible chat server for the web and Vercel end-to-end tests: a real HTTP
// server on 127.0.0.1 speaking `POST /v1/chat/completions` with SSE streaming, whose answers
// are written in advance so the tests are deterministic. It is test infrastructure for the web
// app and the edge, not a model under test (the brain's own tests use a real local model).
//
// Model `scripted-agent` (offered tools): first a `sql` tool call over the sample data, then,
// after its result, a `chart` tool call, then a streamed text answer. Model `scripted-text`:
// only the streamed text answer. Text deltas are paced (DELTA_INTERVAL_MS) so a client can
// watch the answer grow.
import { createServer } from "node:http";

export const SAMPLE_SQL =
  "SELECT store_id, SUM(quantity) AS units FROM transactions GROUP BY store_id ORDER BY store_id LIMIT 10";
export const CHART_INPUT = { sql: SAMPLE_SQL, mark: "bar", x: "store_id", y: "units", title: "Units sold per store" };
export const ANSWER_CHUNKS = ["Units ", "per store ", "are in the ", "table above, ", "and the chart ", "draws them."];
export const ANSWER = ANSWER_CHUNKS.join("");
const DELTA_INTERVAL_MS = 150;

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

/** The events (and pacing) of one completion, from the request the brain sent. */
function script(body) {
  const tools = (body.tools ?? []).map((tool) => tool.function?.name);
  const toolResults = (body.messages ?? []).filter((message) => message.role === "tool").length;
  if (body.model === "scripted-agent" && tools.length > 0) {
    if (toolResults === 0) return { events: toolCall("call_sql", "sql", { sql: SAMPLE_SQL }), paced: false };
    if (toolResults === 1) return { events: toolCall("call_chart", "chart", CHART_INPUT), paced: false };
  }
  const events = [chunk({ role: "assistant", content: "" })];
  for (const text of ANSWER_CHUNKS) events.push(chunk({ content: text }));
  events.push(chunk({}, "stop"));
  return { events, paced: true };
}

export function startScriptedLlm() {
  const requests = [];
  const server = createServer((request, response) => {
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

/** An LLM config file (brain `--llm-config`) routing model `scripted` to the server. */
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
`;
}
