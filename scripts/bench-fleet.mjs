// The fleet's benchmarks (BENCHMARKS.md, "Brain fleet"). Run by scripts/bench-fleet. Everything
// on 127.0.0.1: a PostgreSQL database of its own, the S3-compatible store (moto), three brains,
// the edge in workerd three times — with all three brains in BRAIN_URLS, with brain 1 only, with
// brain 2 only (same secrets: one session works at all three).
//   1. edge added latency with 3 brains vs 1: one tenant whose brain is brain 1 calls
//      `GET /api/v1/session` through the fleet edge and through the one-brain edge, in
//      interleaved rounds (sequential requests on a keep-alive connection); medians of p50/p99.
//   2. a run on brain 1 read from brain 2: the time a reconnect (`Last-Event-ID: 1`) through
//      brain 2 takes to its first event, and the delay of each live event through brain 2
//      behind the same event read from brain 1 (PostgreSQL NOTIFY + the event log).
//   3. memory: 30 tenants with one 1e6-row dataset each, queried once through the fleet edge
//      (frames spread over their brains) against the same 30 through brain 1 only; RSS growth
//      per brain (fresh brains each time).
// Env: BRAIN_BIN, EDGEBRAIN_CACHE, EDGEBRAIN_TEST_PG_URL, ROUNDS (5), REQUESTS (1000),
//      TENANTS (30), ROWS (1000000), SECTIONS (1,2,3,4: which of the above to run).
import { execFileSync } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ROOT, freePort, readSse, startBrain, startProcess, startS3, startWorkerd, stopProcess, tempDir, waitHealthy } from "../e2e/support.mjs";
import { SLOW_QUESTION, scriptedLlmConfig, startScriptedLlm } from "../e2e/scripted-llm.mjs";

const BRAIN_BIN = process.env.BRAIN_BIN;
const CACHE = process.env.EDGEBRAIN_CACHE;
const PG_ADMIN_URL = process.env.EDGEBRAIN_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const REQUESTS = Number(process.env.REQUESTS ?? 1000);
const TENANTS = Number(process.env.TENANTS ?? 30);
const ROWS = Number(process.env.ROWS ?? 1_000_000);
const BRAIN_HEADER = "x-edgebrain-brain";
const SECTIONS = new Set((process.env.SECTIONS ?? "1,2,3,4").split(",").map(Number));

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const median = (values) => percentile(values, 50);
const fmt = (value, digits = 3) => value.toFixed(digits);
const psql = (url, sql) => execFileSync("psql", [url, "-qAtc", sql], { encoding: "utf8" }).trim();
const rssKib = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

/** Sequential GETs on one keep-alive connection; ms per request. */
async function timedGets(url, headers, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise((resolve, reject) => {
      httpRequest(url, { agent, headers }, (response) => {
        if (response.statusCode !== 200) reject(new Error(`${url}: ${response.statusCode}`));
        response.resume();
        response.on("end", resolve);
      }).on("error", reject).end();
    });
    times.push(performance.now() - started);
  }
  agent.destroy();
  return times;
}

const database = `edgebrain_bench_fleet_${randomBytes(4).toString("hex")}`;
const databaseUrl = `${PG_ADMIN_URL.replace(/\/[^/]*$/, "")}/${database}`;
psql(PG_ADMIN_URL, `CREATE DATABASE ${database}`);
const s3 = await startS3();
const bucket = `bench-fleet-${randomBytes(4).toString("hex")}`;
await fetch(`${s3.endpoint}/${bucket}`, { method: "PUT" });
const llm = await startScriptedLlm();
const work = tempDir("edgebrain-bench-fleet-");
const importDir = join(work, "import");
mkdirSync(importDir);
writeFileSync(join(work, "llm.toml"), scriptedLlmConfig(llm.url, "scripted-agent"));

const brains = [];
for (let i = 1; i <= 3; i++) {
  const port = await freePort();
  brains.push({ id: `brain-${i}`, port, url: `http://127.0.0.1:${port}`, dataDir: tempDir(`edgebrain-bench-brain-${i}-`) });
}
async function start(brain, extra = {}) {
  brain.proc = startBrain(BRAIN_BIN, brain.port, brain.dataDir, {
    DATABASE_URL: databaseUrl, BRAIN_ID: brain.id, BRAIN_OBJECT_STORE_URL: `s3://${bucket}`,
    AWS_ENDPOINT_URL: s3.endpoint, AWS_ALLOW_HTTP: "true", AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "bench", AWS_SECRET_ACCESS_KEY: "bench-secret",
    BRAIN_LLM_CONFIG: join(work, "llm.toml"), BRAIN_IMPORT_DIR: importDir, RUST_LOG: "warn",
    BRAIN_SAMPLE_TRANSACTIONS: brain.id === "brain-1" ? String(ROWS) : "0",
    BRAIN_DRAIN_ANNOUNCE_MS: "0", ...extra,
  });
  await waitHealthy(`${brain.url}/ready`, brain.proc, 300_000);
}
const stopAll = () => Promise.all(brains.map((brain) => stopProcess(brain.proc)));

const [fleetPort, onePort, twoPort] = [await freePort(), await freePort(), await freePort()];
const limits = JSON.stringify([{ name: "default", limit: 100_000, window_secs: 60, network_limit: 1_000_000 }, { name: "chat", limit: 100_000, window_secs: 60, network_limit: 1_000_000 }]);
const edges = {
  fleet: { url: `http://127.0.0.1:${fleetPort}`, proc: startWorkerd("bench-fleet", fleetPort, { BRAIN_URLS: brains.map((b) => b.url).join(","), RATE_LIMITS: limits }) },
  one: { url: `http://127.0.0.1:${onePort}`, proc: startWorkerd("bench-one", onePort, { BRAIN_URL: brains[0].url, RATE_LIMITS: limits }) },
  two: { url: `http://127.0.0.1:${twoPort}`, proc: startWorkerd("bench-two", twoPort, { BRAIN_URL: brains[1].url, RATE_LIMITS: limits }) },
};
try {
  await start(brains[0]);
  await Promise.all([start(brains[1]), start(brains[2])]);
  await Promise.all(Object.values(edges).map((edge) => waitHealthy(`${edge.url}/health`, edge.proc, 60_000)));

  /** A new tenant of the fleet edge and its brain. */
  async function tenant() {
    const response = await fetch(`${edges.fleet.url}/api/v1/session`, { headers: { "x-session-id": "new" } });
    await response.arrayBuffer();
    return { session: response.headers.get("x-session-id"), brain: response.headers.get(BRAIN_HEADER) };
  }
  async function tenantOf(brainId) {
    for (;;) {
      const found = await tenant();
      if (found.brain === brainId) return found.session;
    }
  }

  // --- 1. edge added latency, 3 brains vs 1 -------------------------------------------------
  const session = await tenantOf("brain-1");
  const headers = { "x-session-id": session };
  if (SECTIONS.has(1)) {
  const rows = [];
  for (const edge of [edges.fleet, edges.one]) await timedGets(`${edge.url}/api/v1/session`, headers, 200); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ["one", "fleet"] : ["fleet", "one"];
    const result = {};
    for (const name of order) {
      const times = await timedGets(`${edges[name].url}/api/v1/session`, headers, REQUESTS);
      result[name] = { p50: percentile(times, 50), p99: percentile(times, 99) };
    }
    rows.push(result);
  }
  console.log(`\n1. Through the edge to brain 1: ${REQUESTS} sequential GET /api/v1/session per edge and round, ${ROUNDS} interleaved rounds\n`);
  console.log("| edge | p50 ms (median of rounds) | p99 ms (median of rounds) | p50 per round |");
  console.log("|---|---|---|---|");
  for (const name of ["one", "fleet"]) {
    const label = name === "one" ? "BRAIN_URL (1 brain)" : "BRAIN_URLS (3 brains)";
    console.log(`| ${label} | ${fmt(median(rows.map((r) => r[name].p50)))} | ${fmt(median(rows.map((r) => r[name].p99)))} | ${rows.map((r) => fmt(r[name].p50)).join(" ")} |`);
  }
  const added = rows.map((r) => r.fleet.p50 - r.one.p50);
  console.log(`\n3 brains − 1 brain, p50: median ${fmt(median(added))} ms (per round: ${added.map((d) => fmt(d)).join(" ")}); target ≤ +0.05 ms`);
  }

  // --- 2. a run on brain 1 followed through brain 2 ------------------------------------------
  if (SECTIONS.has(2)) {
  const firstEvent = [];
  const liveDelay = [];
  for (let run = 0; run < 3; run++) {
    const thread = await (await fetch(`${edges.fleet.url}/api/v1/threads`, {
      method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{}",
    })).json();
    const origin = await fetch(`${edges.fleet.url}/api/v1/threads/${thread.id}/messages`, {
      method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ content: SLOW_QUESTION }),
    });
    const runId = origin.headers.get("x-edgebrain-run-id");
    const seenAt = new Map();
    const original = readSse(origin, (event) => event.id && seenAt.set(event.id, performance.now()));
    // Reconnects while the run goes on, each from just before the newest event brain 1 has
    // sent (so that event exists: no wait for the model), through brain 2: time to the first
    // event, then leave.
    const followerAt = new Map();
    let follower;
    while (seenAt.size < 25) {
      if (seenAt.size < 2) {
        await new Promise((resolve) => setTimeout(resolve, 5)); // until two events exist
        continue;
      }
      const newest = Math.max(...[...seenAt.keys()].map(Number));
      const controller = new AbortController();
      const started = performance.now();
      const response = await fetch(`${edges.two.url}/api/v1/runs/${runId}/events`, {
        headers: { ...headers, "last-event-id": String(newest - 1) }, signal: controller.signal,
      });
      const reader = response.body.getReader();
      await reader.read();
      firstEvent.push(performance.now() - started);
      controller.abort();
      await reader.cancel().catch(() => {});
      if (!follower && seenAt.size >= 5) {
        // One follower stays to the end: each live event's delay behind the original stream.
        const last = [...seenAt.keys()].at(-1);
        const stay = await fetch(`${edges.two.url}/api/v1/runs/${runId}/events`, { headers: { ...headers, "last-event-id": last } });
        follower = readSse(stay, (event) => event.id && followerAt.set(event.id, performance.now()));
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // spacing between reconnects
    }
    await Promise.all([original, follower]);
    for (const [id, at] of followerAt) if (seenAt.has(id)) liveDelay.push(at - seenAt.get(id));
  }
  console.log(`\n2. A run on brain 1 followed through brain 2 (3 runs of the scripted slow answer)\n`);
  console.log("| measure | samples | p50 ms | p99 ms | max ms |");
  console.log("|---|---|---|---|---|");
  console.log(`| reconnect through brain 2 (Last-Event-ID: the event before brain 1's newest) → first event | ${firstEvent.length} | ${fmt(percentile(firstEvent, 50), 2)} | ${fmt(percentile(firstEvent, 99), 2)} | ${fmt(Math.max(...firstEvent), 2)} |`);
  console.log(`| live event through brain 2 behind brain 1 | ${liveDelay.length} | ${fmt(percentile(liveDelay, 50), 2)} | ${fmt(percentile(liveDelay, 99), 2)} | ${fmt(Math.max(...liveDelay), 2)} |`);
  }

  // --- 3. memory: 30 tenants' frames spread over 3 brains vs on 1 -----------------------------
  // jemalloc returns freed pages after its decay time (10 s): RSS is read after that.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 12_000));
  if (SECTIONS.has(3)) {
  const listed = await (await fetch(`${edges.fleet.url}/api/v1/datasets`, { headers })).json();
  const transactions = listed.datasets.find((d) => d.name === "transactions");
  const keys = await (await fetch(`${s3.endpoint}/${bucket}?list-type=2&prefix=datasets/${transactions.id}/`)).text();
  const key = /<Key>([^<]+\.parquet)<\/Key>/.exec(keys)[1];
  // The object is private: fetched with a signed request (boto3, which moto's venv has).
  execFileSync(join(CACHE, "s3/venv/bin/python"), ["-c", `
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench-secret")
s3.download_file(sys.argv[2], sys.argv[3], sys.argv[4])
`, s3.endpoint, bucket, key, join(importDir, "transactions.parquet")]);
  const tenants = [];
  for (let i = 0; i < TENANTS; i++) {
    const { session: s, brain } = await tenant();
    const imported = await fetch(`${edges.fleet.url}/api/v1/datasets/import`, {
      method: "POST", headers: { "x-session-id": s, "content-type": "application/json" },
      body: JSON.stringify({ name: `tx_${i}`, path: "transactions.parquet" }),
    });
    if (imported.status !== 201) throw new Error(`import: ${imported.status} ${await imported.text()}`);
    tenants.push({ session: s, brain, name: `tx_${i}` });
  }
  async function loadAll(base) {
    for (const t of tenants) {
      const response = await fetch(`${base}/api/v1/queries/sql`, {
        method: "POST", headers: { "x-session-id": t.session, "content-type": "application/json" },
        body: JSON.stringify({ sql: `SELECT COUNT(*) AS n FROM ${t.name}` }),
      });
      if (response.status !== 200) throw new Error(`query: ${response.status} ${await response.text()}`);
      await response.arrayBuffer();
    }
  }
  const measure = async (which, base) => {
    await stopAll();
    for (const brain of which) await start(brain, { BRAIN_SAMPLE_TRANSACTIONS: "0" });
    const before = Object.fromEntries(which.map((b) => [b.id, rssKib(b.proc.child.pid)]));
    await loadAll(base);
    await settle();
    return Object.fromEntries(which.map((b) => [b.id, { before: before[b.id], after: rssKib(b.proc.child.pid) }]));
  };
  const single = await measure([brains[0]], edges.one.url);
  const spread = await measure(brains, edges.fleet.url);
  const perBrain = Object.fromEntries(brains.map((b) => [b.id, tenants.filter((t) => t.brain === b.id).length]));
  const singleGrowth = single["brain-1"].after - single["brain-1"].before;
  console.log(`\n3. ${TENANTS} tenants × one ${ROWS}-row dataset, each queried once; RSS of fresh brains (KiB), 12 s after\n`);
  console.log("| setup | brain | tenants | RSS before | RSS after | growth | growth ÷ single brain's |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(`| all on brain 1 | brain-1 | ${TENANTS} | ${single["brain-1"].before} | ${single["brain-1"].after} | ${singleGrowth} | 1.00 |`);
  for (const brain of brains) {
    const m = spread[brain.id];
    console.log(`| spread over 3 | ${brain.id} | ${perBrain[brain.id]} | ${m.before} | ${m.after} | ${m.after - m.before} | ${fmt((m.after - m.before) / singleGrowth, 2)} |`);
  }
  const worst = Math.max(...brains.map((b) => spread[b.id].after)) / single["brain-1"].after;
  console.log(`\nLargest RSS of a brain of the fleet ÷ the single brain's RSS: ${fmt(worst, 2)} (target ≤ 0.40)`);
  }

  // --- 4. a dataset three times the memory budget, queried by the streaming path ------------
  // One brain of its own (default local store, SQLite), whose sample transactions frame is
  // three times its budget: never loaded, scanned. Its RSS is sampled every 5 ms during the
  // queries; the growth over its settled RSS is compared with the budget.
  if (SECTIONS.has(4)) {
  const arrowBytes = Number(process.env.FRAME_BYTES ?? 0) || null;
  const alone = { id: "alone", port: await freePort(), dataDir: tempDir("edgebrain-bench-alone-") };
  alone.url = `http://127.0.0.1:${alone.port}`;
  // The frame's size, from a first start with the default budget.
  // Called directly (no edge): identity headers as sent, on loopback only.
  const startAlone = (extra = {}) => startProcess("brain-alone", BRAIN_BIN, [], {
    BRAIN_BIND: `127.0.0.1:${alone.port}`, BRAIN_DATA_DIR: alone.dataDir, BRAIN_INSECURE_LOCAL: "true",
    BRAIN_SAMPLE_TRANSACTIONS: String(ROWS), RUST_LOG: "warn", ...extra,
  });
  // A budget the whole frame fits in (16 GiB, not taken, only allowed): the first answer is the
  // in-memory engine's, and the frame's size is read off the memory manager.
  alone.proc = startAlone({ BRAIN_DATASETS_MEMORY_BUDGET_BYTES: String(16 * 1024 ** 3) });
  await waitHealthy(`${alone.url}/ready`, alone.proc, 300_000);
  const identity = { "x-edgebrain-user": "bench", "content-type": "application/json" };
  const groupBy = "SELECT store_id, SUM(quantity * unit_price) AS revenue, COUNT(*) AS n FROM transactions GROUP BY store_id ORDER BY store_id";
  const run = async () => {
    const response = await fetch(`${alone.url}/api/v1/queries/sql`, { method: "POST", headers: identity, body: JSON.stringify({ sql: groupBy }) });
    if (response.status !== 200) throw new Error(`query: ${response.status} ${await response.text()}`);
    return (await response.json()).rows;
  };
  const inMemory = await run();
  const operator = { "x-edgebrain-user": "bench", "x-edgebrain-scopes": "edgebrain:operator" };
  const sampleList = await (await fetch(`${alone.url}/api/v1/datasets`, { headers: operator })).json();
  const transactionsId = sampleList.datasets.find((d) => d.name === "transactions").id;
  const loadedFrames = (await (await fetch(`${alone.url}/api/v1/datasets/memory`, { headers: operator })).json()).frames;
  const loaded = loadedFrames.find((frame) => frame.id === transactionsId);
  if (!loaded && !arrowBytes) throw new Error("the first query did not load the frame: its answer is not the in-memory engine's");
  const frameBytes = arrowBytes ?? loaded.bytes;
  await stopProcess(alone.proc);
  const budget = Math.floor(frameBytes / 3);
  alone.proc = startAlone({ BRAIN_DATASETS_MEMORY_BUDGET_BYTES: String(budget) });
  await waitHealthy(`${alone.url}/ready`, alone.proc, 300_000);
  await settle();
  const statusField = (field) => 1024 * Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${alone.proc.child.pid}/status`, "utf8"))[1]);
  const settled = rssKib(alone.proc.child.pid) * 1024;
  const settledOf = { RssAnon: statusField("RssAnon"), RssFile: statusField("RssFile") };
  let peak = settled;
  const peakOf = { RssAnon: 0, RssFile: 0 };
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssKib(alone.proc.child.pid) * 1024);
    for (const field of Object.keys(peakOf)) peakOf[field] = Math.max(peakOf[field], statusField(field));
  }, 5);
  const scanned = [];
  const scanTimes = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    scanned.push(await run());
    scanTimes.push(performance.now() - started);
  }
  clearInterval(sampler);
  const memory = await (await fetch(`${alone.url}/api/v1/datasets/memory`, { headers: operator })).json();
  // Float sums may differ in their last bits between the engines (summation order).
  const close = (a, b) => typeof a === "number" && typeof b === "number" ? Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a)) : a === b;
  const same = scanned.every((rows) => rows.length === inMemory.length
    && rows.every((row, i) => Object.keys(inMemory[i]).every((k) => close(row[k], inMemory[i][k]))));
  console.log(`\n4. The ${ROWS}-row transactions frame (${frameBytes} bytes in memory) on a brain whose budget is a third of it (${budget} bytes): ${groupBy}\n`);
  console.log("| measure | value |");
  console.log("|---|---|");
  console.log(`| answers equal to the in-memory engine's (floats to 1e-9 relative) | ${same ? "yes" : "NO"} |`);
  console.log(`| transactions frame in memory after the queries | ${memory.frames.some((frame) => frame.id === transactionsId) ? "YES" : "no"} (${memory.used_bytes} bytes of frames in all) |`);
  console.log(`| query time, median of 5 (ms) | ${fmt(median(scanTimes), 1)} |`);
  console.log(`| RSS settled before (bytes) | ${settled} |`);
  console.log(`| peak RSS during the queries (bytes) | ${peak} |`);
  console.log(`| anonymous memory (RssAnon) settled / peak | ${settledOf.RssAnon} / ${peakOf.RssAnon} (growth ÷ budget ${fmt((peakOf.RssAnon - settledOf.RssAnon) / budget, 2)}) |`);
  console.log(`| file-backed (RssFile: the binary's code, the mmapped Parquet file) settled / peak | ${settledOf.RssFile} / ${peakOf.RssFile} |`);
  console.log(`| peak growth ÷ budget | ${fmt((peak - settled) / budget, 2)} (target: peak ≤ budget + 20 %, i.e. growth ≤ 1.20 × budget) |`);
  await stopProcess(alone.proc);
  }
} finally {
  await Promise.all(Object.values(edges).map((edge) => stopProcess(edge.proc)));
  await stopAll();
  await llm.close();
  s3.child.stdin.end();
  try {
    psql(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } catch {}
}
