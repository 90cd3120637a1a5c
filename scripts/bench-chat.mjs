// Chat benchmarks of the brain (figures in BENCHMARKS.md "Brain: chat"). Run by scripts/bench-chat.
//   1. brain overhead per chat turn, model time excluded: the brain talks to an instant
//      OpenAI-compatible stub (in this process), so a turn's time is the brain's own work
//      (thread lookup, context, two message writes, run row, SSE) plus one loopback hop; the
//      stub called directly gives the hop's baseline.
//   2. time to first token with the real local model (llama.cpp, SmolLM2): direct, through the
//      brain, and (when edge/build exists: scripts/build-edge) through the edge in workerd and
//      the brain; alternating, same prompt.
//   3. concurrent idle SSE streams held by the brain, and its RSS.
// Env: BRAIN_BIN, LLM_DIR, TURNS (200), TTFT_ROUNDS (10), IDLE_STREAMS (10000).
import { spawn } from "node:child_process";
import { createServer, request as httpRequest, Agent } from "node:http";
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { writeWorkerdConfig } from "./workerd-config.mjs";

const BRAIN_BIN = process.env.BRAIN_BIN;
const LLM_DIR = process.env.LLM_DIR;
const TURNS = Number(process.env.TURNS ?? 200);
const TTFT_ROUNDS = Number(process.env.TTFT_ROUNDS ?? 10);
const IDLE_STREAMS = Number(process.env.IDLE_STREAMS ?? 10000);
const ROOT = join(import.meta.dirname, "..");
const IDENTITY = { "x-edgebrain-user": "bench", "x-edgebrain-session": "bench" };

const children = [];
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitOk(url, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100)); // poll interval
  }
  throw new Error(`${url} not ready`);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const fmt = (ms) => ms.toFixed(2);

/** POSTs and reads an SSE body; returns ms until the first chunk containing `marker` and until the end. */
async function timedStream(url, body, marker, headers = {}) {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  let first = null;
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    if (first === null && decoder.decode(chunk, { stream: true }).includes(marker)) first = performance.now() - started;
  }
  return { first, total: performance.now() - started };
}

/** An OpenAI-compatible server answering every call at once with 8 deltas, usage and [DONE]. */
async function startStub() {
  const frames = [];
  for (let i = 0; i < 8; i++) frames.push({ choices: [{ index: 0, delta: { content: ` w${i}` } }] });
  frames.push({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
  frames.push({ choices: [], usage: { prompt_tokens: 20, completion_tokens: 8 } });
  const payload = frames.map((frame) => `data: ${JSON.stringify(frame)}\n\n`).join("") + "data: [DONE]\n\n";
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/v1` };
}

async function startBrain(env) {
  const port = await freePort();
  const child = spawn(BRAIN_BIN, [], {
    env: {
      ...process.env, BRAIN_BIND: `127.0.0.1:${port}`,
      BRAIN_DATA_DIR: mkdtempSync(join(tmpdir(), "edgebrain-bench-")), RUST_LOG: "warn",
      // The brain is also called directly here (identity headers as sent), so it runs without
      // signature checks; the edge rows still go through the edge's whole pipeline.
      BRAIN_INSECURE_LOCAL: "true", BRAIN_SAMPLE_TRANSACTIONS: "0", ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitOk(`${url}/ready`, 60_000);
  return { child, url };
}

async function newThread(brain, base = brain.url, headers = IDENTITY) {
  const response = await fetch(`${base}/api/v1/threads`, {
    method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{}",
  });
  return (await response.json()).id;
}

async function overheadPerTurn() {
  const stub = await startStub();
  const dir = mkdtempSync(join(tmpdir(), "edgebrain-bench-cfg-"));
  const config = join(dir, "llm.toml");
  writeFileSync(config, `default_model = "stub"
[[providers]]
name = "stub"
kind = "openai-compatible"
base_url = "${stub.url}"
[[models]]
name = "stub"
route = [{ provider = "stub", model = "stub" }]
context_tokens = 8192
max_output_tokens = 64
`);
  const brain = await startBrain({ BRAIN_LLM_CONFIG: config, BRAIN_RUN_RETENTION_SECS: "5" });
  const direct = [], first = [], total = [];
  const stubBody = { model: "stub", messages: [{ role: "user", content: "hi" }], stream: true };
  // Warm-up: connections, SQLite page cache.
  for (let i = 0; i < 10; i++) await timedStream(`${brain.url}/api/v1/threads/${await newThread(brain)}/messages`, { content: "warm" }, "text-delta", IDENTITY);
  let thread;
  for (let i = 0; i < TURNS; i++) {
    if (i % 10 === 0) thread = await newThread(brain); // threads of up to 10 turns (20 messages)
    direct.push((await timedStream(`${stub.url}/chat/completions`, stubBody, "[DONE]")).total);
    const turn = await timedStream(`${brain.url}/api/v1/threads/${thread}/messages`, { content: `turn ${i}` }, "text-delta", IDENTITY);
    first.push(turn.first);
    total.push(turn.total);
  }
  brain.child.kill("SIGTERM");
  stub.server.close();
  console.log(`\n| chat turn, instant model stub, ${TURNS} sequential turns (threads of 10) | p50 ms | p99 ms |`);
  console.log("|---|---|---|");
  console.log(`| stub called directly (whole stream) | ${fmt(percentile(direct, 50))} | ${fmt(percentile(direct, 99))} |`);
  console.log(`| through the brain: first text-delta | ${fmt(percentile(first, 50))} | ${fmt(percentile(first, 99))} |`);
  console.log(`| through the brain: whole turn until [DONE] (stored) | ${fmt(percentile(total, 50))} | ${fmt(percentile(total, 99))} |`);
  console.log(`| **brain overhead per turn** (whole turn − direct) | **${fmt(percentile(total, 50) - percentile(direct, 50))}** | **${fmt(percentile(total, 99) - percentile(direct, 99))}** |`);
}

async function timeToFirstToken() {
  const port = await freePort();
  const llm = spawn(join(LLM_DIR, "venv/bin/python"), [
    join(ROOT, "scripts/llm-server.py"), "--model", join(LLM_DIR, "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "--port", String(port),
  ], { stdio: "ignore" });
  children.push(llm);
  const llmUrl = `http://127.0.0.1:${port}`;
  await waitOk(`${llmUrl}/health`, 120_000);
  const brain = await startBrain({ BRAIN_LOCAL_LLM_URL: `${llmUrl}/v1`, BRAIN_LOCAL_LLM_MAX_OUTPUT_TOKENS: "8" });
  let edgeUrl = null;
  let edgeSession = null;
  if (existsSync(join(ROOT, "edge/build/worker.mjs"))) {
    const edgePort = await freePort();
    const config = writeWorkerdConfig(mkdtempSync(join(tmpdir(), "edgebrain-bench-edge-")), edgePort, {
      BRAIN_URL: brain.url,
      EDGE_SIGNING_SECRETS: "bench-edge-signing-secret-0123456789abcdef",
      SESSION_KEYS: "b1:bench-session-key-0123456789abcdef0123456789",
    });
    const workerd = spawn(join(ROOT, "node_modules/.bin/workerd"), ["serve", config], { stdio: "ignore" });
    children.push(workerd);
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    await waitOk(`${edgeUrl}/health`, 60_000);
    // A session the edge issues this client (x-session-id), reused for every edge turn.
    const issued = await fetch(`${edgeUrl}/api/v1/session`, { headers: { "x-session-id": "new" } });
    edgeSession = { "x-session-id": issued.headers.get("x-session-id") };
  }
  const direct = [], viaBrain = [], viaEdge = [];
  const prompt = "Say hello.";
  for (let i = 0; i < TTFT_ROUNDS + 2; i++) {
    const d = await timedStream(`${llmUrl}/v1/chat/completions`, {
      messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: prompt }],
      max_tokens: 8, stream: true,
    }, '"content":"');
    const b = await timedStream(`${brain.url}/api/v1/threads/${await newThread(brain)}/messages`, { content: prompt }, "text-delta", IDENTITY);
    // Through the edge: its session, its signature, its whole pipeline.
    const e = edgeUrl && await timedStream(
      `${edgeUrl}/api/v1/threads/${await newThread(brain, edgeUrl, edgeSession)}/messages`,
      { content: prompt }, "text-delta", edgeSession,
    );
    if (i >= 2) { direct.push(d.first); viaBrain.push(b.first); if (e) viaEdge.push(e.first); } // two warm-up rounds
  }
  brain.child.kill("SIGTERM");
  llm.kill("SIGTERM");
  console.log(`\n| time to first token, local SmolLM2-135M, ${TTFT_ROUNDS} rounds | p50 ms | p99 ms |`);
  console.log("|---|---|---|");
  console.log(`| direct to the llama.cpp server | ${fmt(percentile(direct, 50))} | ${fmt(percentile(direct, 99))} |`);
  console.log(`| through the brain (new thread each turn) | ${fmt(percentile(viaBrain, 50))} | ${fmt(percentile(viaBrain, 99))} |`);
  if (viaEdge.length) console.log(`| through the edge (workerd) and the brain | ${fmt(percentile(viaEdge, 50))} | ${fmt(percentile(viaEdge, 99))} |`);
  else console.log("| through the edge | not measured: edge/build missing (scripts/build-edge) | |");
}

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

async function idleStreams() {
  // The stream probe is one of the operators' diagnostics: open it for this rig.
  const brain = await startBrain({ BRAIN_DIAG: "open", BRAIN_DIAG_MAX_EVENTS: "2", BRAIN_DIAG_MAX_INTERVAL_MS: "600000" });
  const url = new URL(`${brain.url}/api/v1/diag/stream?events=2&interval_ms=600000`);
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const before = rssMiB(brain.child.pid);
  const requests = [];
  let open = 0;
  const started = performance.now();
  const openOne = () => new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, agent }, (res) => {
      res.once("data", () => { open++; resolve(); }); // the first tick: the stream is live
    });
    req.on("error", reject);
    req.end();
    requests.push(req);
  });
  for (let i = 0; i < IDLE_STREAMS; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, IDLE_STREAMS - i) }, openOne));
  }
  const opened = performance.now() - started;
  const rss = rssMiB(brain.child.pid);
  requests.forEach((req) => req.destroy());
  brain.child.kill("SIGTERM");
  console.log(`\n| idle SSE streams held by one brain | value |`);
  console.log("|---|---|");
  console.log(`| streams open (each received its first event, then idle) | ${open} |`);
  console.log(`| time to open them (500 at a time) | ${(opened / 1000).toFixed(1)} s |`);
  console.log(`| brain RSS before / with all streams open | ${before.toFixed(0)} MiB / **${rss.toFixed(0)} MiB** |`);
  console.log(`| per stream | ${(((rss - before) * 1024) / open).toFixed(1)} KiB |`);
}

await overheadPerTurn();
await timeToFirstToken();
await idleStreams();
process.exit(0);
