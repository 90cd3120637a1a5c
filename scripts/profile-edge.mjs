// CPU profiles of the edge isolate in workerd under load (scripts/profile-edge runs it):
//   node scripts/profile-edge.mjs profile INSPECTOR_PORT URL WORKERD_PID OUT_DIR LABEL SECONDS CONNS…
//       with the request's headers in PROFILE_HEADERS (JSON object); for each number of
//       keep-alive connections: 2 s of warm-up, a run without the profiler (CPU µs per request
//       of the workerd process; with PROFILE_PERF=1 sampled by `perf record -g`, written as
//       OUT_DIR/LABEL-cCONNS.perf.folded), then Profiler.start, the same load, Profiler.stop;
//       writes OUT_DIR/LABEL-cCONNS.cpuprofile (open it in Chrome DevTools); prints the tables.
//   node scripts/profile-edge.mjs analyze FILE.cpuprofile [REQUESTS]   the tables of a saved profile
//   node scripts/profile-edge.mjs perf FILE.perf.data REQUESTS CPU_US_PER_REQUEST MAP   again from perf's data
//   node scripts/profile-edge.mjs analyze FILE.perf.folded REQUESTS CPU_US_PER_REQUEST   of a perf run
//   node scripts/profile-edge.mjs stub PORT   a stand-in brain when none is built: answers
//       /api/v1/diag/echo with the brain's echo shape (the edge isolate's profile does not
//       depend on who answers).
import http from "node:http";
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SAMPLING_INTERVAL_US = Number(process.env.PROFILE_INTERVAL_US ?? 50);

// ---- the inspector (Chrome DevTools Protocol over the WebSocket workerd serves) ----

async function connect(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  // workerd lists one target per service; the edge's is named after it.
  const target = targets.find((t) => /edge/.test(`${t.title} ${t.id}`)) ?? targets[0];
  if (!target) throw new Error(`no inspector target at port ${port}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot open ${target.webSocketDebuggerUrl}`));
  });
  let next = 1;
  const pending = new Map();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${waiter.method}: ${JSON.stringify(message.error)}`));
    else waiter.resolve(message.result);
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject, method });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => socket.close(), title: target.title };
}

// ---- the load: CONNS keep-alive connections, each sending its next request when the last ended ----

/** One answer's size: what workerd serializes back, and (for the echo) what the brain received. */
async function oneAnswer(url, headers) {
  const response = await fetch(url, { headers });
  const body = await response.text();
  const lines = [...response.headers].map(([k, v]) => `${k}: ${v}\r\n`).join("");
  let sent = "";
  try {
    const echoed = JSON.parse(body).headers;
    sent = `; the brain received ${Object.keys(echoed).length} headers, ` +
      `${Object.entries(echoed).reduce((n, [k, v]) => n + k.length + String(v).length + 4, 0)} B`;
  } catch {}
  return `one answer: ${response.status}, ${[...response.headers].length} headers (${lines.length} B), body ${body.length} B${sent}`;
}

async function load(url, headers, connections, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const bad = new Map();
  const once = () =>
    new Promise((resolve, reject) => {
      const request = http.get(url, { agent, headers }, (response) => {
        response.on("data", () => {});
        response.on("end", () => {
          if (response.statusCode !== 200) bad.set(response.statusCode, (bad.get(response.statusCode) ?? 0) + 1);
          resolve();
        });
        response.on("error", reject);
      });
      request.on("error", reject);
    });
  const client = async () => {
    while (Date.now() < end) {
      await once();
      done++;
    }
  };
  await Promise.all(Array.from({ length: connections }, client));
  agent.destroy();
  if (bad.size) throw new Error(`not all answers were 200: ${JSON.stringify(Object.fromEntries(bad))}`);
  return done;
}

const TICK_US = 10_000; // Linux USER_HZ is 100 (getconf CLK_TCK); scripts/profile-edge checks it
function cpuUs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_US; // utime, stime
}

async function profile([port, url, pid, outDir, label, seconds, ...conns]) {
  const headers = JSON.parse(process.env.PROFILE_HEADERS ?? "{}");
  const inspector = await connect(Number(port));
  console.log(`inspector target: ${inspector.title}`);
  console.log(await oneAnswer(url, headers));
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  for (const c of conns.map(Number)) {
    await load(url, headers, c, 2); // warm-up: JIT tiers, connection pools
    // PROFILE_PERF=1: the run without the inspector's profiler is sampled by `perf` instead,
    // in CPU time (workerd runs with V8's --perf-basic-prof, so JS and wasm have names).
    const perfData = join(outDir, `${label}-c${c}.perf.data`);
    const perf = process.env.PROFILE_PERF === "1"
      ? spawn("perf", ["record", "-q", "-g", "-F", "4999", "-p", pid, "-o", perfData], { stdio: "ignore" })
      : null;
    if (perf) await new Promise((resolve) => setTimeout(resolve, 500));
    let cpu = cpuUs(pid);
    let start = performance.now();
    const plain = await load(url, headers, c, Number(seconds));
    const plainWall = performance.now() - start;
    const plainCpu = cpuUs(pid) - cpu;
    if (perf) {
      const exited = new Promise((resolve) => perf.on("exit", resolve));
      perf.kill("SIGINT");
      await exited;
    }
    await inspector.send("Profiler.start");
    cpu = cpuUs(pid);
    start = performance.now();
    const requests = await load(url, headers, c, Number(seconds));
    const wall = performance.now() - start;
    const profiledCpu = cpuUs(pid) - cpu;
    const { profile } = await inspector.send("Profiler.stop");
    const file = join(outDir, `${label}-c${c}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`\n### ${label}, ${c} connection${c === 1 ? "" : "s"} (${file})\n`);
    console.log(
      `without the profiler: ${plain} requests in ${(plainWall / 1000).toFixed(1)} s, ` +
        `${Math.round(plain / (plainWall / 1000))} req/s, workerd CPU ${Math.round(plainCpu / plain)} µs/request`,
    );
    console.log(
      `profiled (sampling every ${SAMPLING_INTERVAL_US} µs): ${requests} requests, ` +
        `${Math.round(requests / (wall / 1000))} req/s, workerd CPU ${Math.round(profiledCpu / requests)} µs/request\n`,
    );
    report(profile, requests);
    if (perf) perfReport(perfData, plain, Math.round(plainCpu / plain), join(outDir, `${label}-c${c}.perf.folded`));
  }
  await inspector.send("Profiler.disable");
  inspector.close();
}

// ---- the tables ----

const GLUE = /^(passStringToWasm0|getStringFromWasm0|getUint8ArrayMemory0|getDataViewMemory0|decodeText|takeObject|addHeapObject|getObject|dropObject|handleError|isLikeNone|debugString|passArray8ToWasm0|getArrayU8FromWasm0|addToExternrefTable0|takeFromExternrefTable0|__wbg_|__wbindgen_|beginRequest|stepRequest|stepBody|endRequest)/;

/** A frame's category: what the gap question needs told apart. */
function category(frame) {
  const { functionName: name, url } = frame;
  if (name === "(garbage collector)") return "GC";
  if (name === "(program)") return "(program): runtime/native outside JS";
  if (name === "(idle)") return "(idle)";
  if (url.startsWith("wasm://")) {
    if (/malloc|realloc|dealloc|free|memcpy|memmove|memset|memcmp|dlmalloc|__rust_alloc|__rdl_/.test(name))
      return "wasm: allocator and mem* (incl. glue's malloc/realloc)";
    return "wasm: the core (Rust)";
  }
  if (url.endsWith("worker.mjs") || url.endsWith("glue.mjs")) {
    if (GLUE.test(name)) return "JS: wasm-bindgen glue (string/object crossings)";
    return "JS: edge's JS (executor, headers, deadline)";
  }
  if (url === "") return "native/builtins (runtime APIs, JSON, TextEncoder/Decoder…)";
  return `other script ${url}`;
}

function frameKey(frame) {
  const where = frame.url.startsWith("wasm://") ? "wasm" : frame.url ? frame.url.split("/").pop() : "native";
  return `${frame.functionName || "(anonymous)"} [${where}${frame.url && !frame.url.startsWith("wasm://") ? `:${frame.lineNumber + 1}` : ""}]`;
}

function report(profile, requests) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // DevTools' attribution: sample i lasts until sample i + 1.
  const self = new Map(); // node id → µs
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + Math.max(dt, 0));
  }
  let total = 0;
  let idle = 0;
  const byCategory = new Map();
  const byFunction = new Map();
  const inclusive = new Map();
  for (const [id, us] of self) {
    const frame = nodes.get(id).callFrame;
    total += us;
    if (frame.functionName === "(idle)" || frame.functionName === "(root)") {
      idle += us;
      continue;
    }
    const cat = category(frame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
    const key = frameKey(frame);
    byFunction.set(key, { us: (byFunction.get(key)?.us ?? 0) + us, cat });
    // Inclusive: each function on the stack once.
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const k = frameKey(nodes.get(at).callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const pct = (us) => `${((100 * us) / busy).toFixed(1)} %`;
  const perReq = (us) => (requests ? (us / requests).toFixed(1) : "–");
  console.log(
    `profile: ${(total / 1e6).toFixed(2)} s sampled, ${(idle / 1e6).toFixed(2)} s idle, busy ${(busy / 1e6).toFixed(2)} s` +
      (requests ? ` = ${Math.round(busy / requests)} µs per request (${requests} requests)` : "") +
      `, ${samples.length} samples\n`,
  );
  console.log("| category | self time, share of busy | µs per request |\n|---|---|---|");
  for (const [cat, us] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${cat} | ${pct(us)} | ${perReq(us)} |`);
  }
  console.log("\n| top functions by self time | category | share of busy | µs per request |\n|---|---|---|---|");
  for (const [key, { us, cat }] of [...byFunction].sort((a, b) => b[1].us - a[1].us).slice(0, Number(process.env.PROFILE_TOP ?? 25))) {
    console.log(`| \`${key}\` | ${cat.split(" (")[0]} | ${pct(us)} | ${perReq(us)} |`);
  }
  console.log("\n| top functions by inclusive time | share of busy | µs per request |\n|---|---|---|");
  for (const [key, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 25))) {
    if (key.startsWith("(root)")) continue;
    console.log(`| \`${key}\` | ${pct(us)} | ${perReq(us)} |`);
  }
}

/**
 * `perf script`'s call stacks (CPU time, all workerd threads): what each CPU sample ran (the
 * leaf, by kind of code) and on whose behalf (the stack):
 *   - "the wasm core": the leaf is wasm code;
 *   - "called from wasm": a wasm frame is on the stack but the leaf is not wasm — the imports
 *     the core calls (wasm-bindgen's glue, runtime APIs, string conversions) and the runtime
 *     work behind them;
 *   - "wasm-bindgen glue outside wasm": the exports' JS wrappers before and after the call
 *     (passStringToWasm0, getStringFromWasm0, …);
 *   - "edge JS: F": no wasm on the stack; F is the innermost function of the worker's own JS
 *     (worker.mjs), so F's native callees (fetch, new Response, JSON.parse…) count as F's;
 *   - otherwise workerd's own work for the request (HTTP server and client, event loop,
 *     microtask machinery, GC), by kind of leaf.
 */
function perfReport(file, requests, cpuPerRequest, outFile) {
  const text = execFileSync("perf", ["script", "-i", file, "-F", "tid,ip,sym,dso"], {
    encoding: "utf8", maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "ignore"],
  });
  // Folded stacks ("tid;root;…;leaf count", flame-graph tools read them), since naming JIT code
  // needs workerd's /tmp/perf-PID.map, which goes with the process.
  const folded = new Map();
  for (const block of text.split(/\n(?=[^\t])/)) {
    const lines = block.split("\n");
    const tid = lines[0].trim();
    const frames = [];
    for (const line of lines.slice(1)) {
      const m = line.match(/^\s+[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$/);
      if (!m) continue;
      const dso = /\/perf-\d+\.map$/.test(m[2]) ? "jit" : m[2].split("/").pop().replace(/[[\]]/g, "");
      // Native names are cut at 120 characters (C++ template arguments make them kilobytes
      // long; the tables read their prefixes); JIT names end in the wasm tier, kept whole.
      const sym = dso === "jit" ? m[1] : m[1].slice(0, 120);
      frames.push(`${sym.replaceAll(";", ",")} [${dso}]`);
    }
    if (!frames.length) continue;
    const key = [tid, ...frames.reverse()].join(";");
    folded.set(key, (folded.get(key) ?? 0) + 1);
  }
  const lines = [...folded].map(([stack, n]) => `${stack} ${n}`).join("\n");
  writeFileSync(outFile, lines + "\n");
  perfTables(lines, requests, cpuPerRequest);
}

function perfTables(folded, requests, cpuPerRequest) {
  const samples = [];
  for (const line of folded.split("\n")) {
    const at = line.lastIndexOf(" ");
    if (at < 0) continue;
    const [tid, ...stack] = line.slice(0, at).split(";");
    const frames = stack.reverse().map((frame) => {
      const m = frame.match(/^(.*) \[([^\]]*)\]$/);
      return { sym: m[1], dso: m[2] };
    });
    samples.push({ tid, frames, n: Number(line.slice(at + 1)) });
  }
  const mainTid = [...samples.reduce((n, s) => n.set(s.tid, (n.get(s.tid) ?? 0) + s.n), new Map())].sort((a, b) => b[1] - a[1])[0]?.[0];
  const isWasm = (f) => f.dso === "jit" && (/-(liftoff|turbofan)$/.test(f.sym) || /^JS:(js-to-wasm|wasm-to-js)/.test(f.sym));
  // The worker's own JS: its modules are .mjs files (workerd's own JS is node-internal:…).
  const workerJs = (f) => f.sym.match(/^JS:\W*([\w$#.]+) [\w.]+\.mjs:/)?.[1];
  const leafKind = (f) => {
    if (f.dso.startsWith("kernel")) return "kernel";
    if (f.dso === "jit") return f.sym.startsWith("JS:") ? "JS/wasm JIT code" : "V8 builtins";
    if (/workerd$/.test(f.dso)) return `workerd: ${area(f.sym)}`;
    if (/libc|ld-linux|libm\b/.test(f.dso)) return "libc";
    return f.dso.split("/").pop();
  };
  const buckets = new Map(); // bucket → { n, inner: Map }
  const wasmSelf = new Map();
  const wasmInclusive = new Map(); // wasm function → samples with it on the stack (imports included)
  const wasmPurpose = new Map(); // what the core was doing (the innermost frame that says) → samples
  const wasmModule = new Map(); // crate or edge module → samples
  const wasmTier = new Map(); // liftoff (baseline) or turbofan (optimized) → samples
  let n = 0; // the current sample's count
  const add = (bucket, inner) => {
    const b = buckets.get(bucket) ?? { n: 0, inner: new Map() };
    b.n += n;
    b.inner.set(inner, (b.inner.get(inner) ?? 0) + n);
    buckets.set(bucket, b);
  };
  for (const sample of samples) {
    const { tid, frames } = sample;
    n = sample.n;
    const leaf = frames[0];
    const seen = new Set();
    for (const f of frames) {
      if (!isWasm(f) || f.sym.startsWith("JS:wasm-to-js")) continue;
      const name = f.sym.replace(/^JS:/, "").replace(/-\d+-(liftoff|turbofan)$/, "").replace(/\[[0-9a-f]{16}\]/g, "");
      if (!seen.has(name)) wasmInclusive.set(name, (wasmInclusive.get(name) ?? 0) + n);
      seen.add(name);
    }
    if (tid === mainTid && frames.some(isWasm)) {
      const unhashed = (f) => f.sym.replace(/\[[0-9a-f]{16}\]/g, "");
      const purpose = frames.map((f) => PURPOSES.find(([, re]) => re.test(unhashed(f)))?.[0]).find(Boolean) ?? "other";
      wasmPurpose.set(purpose, (wasmPurpose.get(purpose) ?? 0) + n);
    }
    if (tid !== mainTid) { add("other threads (V8 background compile and GC, …)", leafKind(leaf)); continue; }
    if (isWasm(leaf)) {
      const name = leaf.sym.replace(/^JS:/, "").replace(/-\d+-(liftoff|turbofan)$/, "").replace(/\[[0-9a-f]{16}\]/g, "");
      add("the wasm core (leaf in wasm)", /^(js-to-wasm|wasm-to-js)/.test(name) ? "JS↔wasm wrappers" : /dlmalloc|memcpy|memmove|memset|memcmp/.test(name) ? "allocator, mem*" : "the core's code");
      wasmSelf.set(name, (wasmSelf.get(name) ?? 0) + n);
      const module = name.startsWith("<") ? name.slice(1).split(/ as |>/)[0] : name;
      const path = module.split("::");
      const group = path[0] === "edge" ? path.slice(0, path[1] === "core" ? 3 : 2).join("::") : path[0].split(/[ <]/)[0];
      wasmModule.set(group, (wasmModule.get(group) ?? 0) + n);
      const tier = leaf.sym.match(/-(liftoff|turbofan)$/)?.[1] ?? "wrappers";
      wasmTier.set(tier, (wasmTier.get(tier) ?? 0) + n);
      continue;
    }
    const wasmAt = frames.findIndex(isWasm);
    if (wasmAt >= 0) {
      // The innermost glue/JS function between the wasm and the leaf names the import.
      const js = frames.slice(0, wasmAt).map(workerJs).find(Boolean);
      add("called from wasm (imports, conversions, runtime APIs)", `${js ?? "(no JS frame)"} → ${leafKind(leaf)}`);
      continue;
    }
    const js = frames.map(workerJs).find(Boolean);
    if (js && GLUE.test(js)) {
      add("wasm-bindgen glue outside wasm (string copies in and out, exports' wrappers)", `${js} → ${leafKind(leaf)}`);
      continue;
    }
    if (js) {
      const jit = frames.findIndex((f) => f.dso === "jit");
      const api = frames.slice(0, jit).findLast((f) => /^workerd::api::/.test(f.sym))?.sym.match(/^workerd::api::([\w:]+)/)?.[1];
      add(`edge JS: ${js}`, api ? `api ${api}` : leafKind(leaf));
      continue;
    }
    add(`workerd, no worker JS on the stack: ${leafKind(leaf)}`, frames.find((f) => /^workerd::(api|IoContext|Worker)/.test(f.sym))?.sym.slice(0, 60) ?? "");
  }
  const total = samples.reduce((sum, sample) => sum + sample.n, 0);
  const row = (n) => `${((100 * n) / total).toFixed(1)} % | ${Math.round((n / total) * cpuPerRequest)}`;
  console.log(`\nperf, CPU of all workerd threads, the run without the inspector's profiler: ${total} samples, ${requests} requests, ${cpuPerRequest} µs/request\n`);
  console.log("| on behalf of | share of CPU | µs per request | biggest parts (share of CPU) |\n|---|---|---|---|");
  for (const [bucket, { n, inner }] of [...buckets].sort((a, b) => b[1].n - a[1].n)) {
    if (n / total < 0.003) continue;
    const parts = [...inner].sort((a, b) => b[1] - a[1]).slice(0, 4).filter(([, k]) => k / total >= 0.002)
      .map(([k, m]) => `${k || "–"} ${((100 * m) / total).toFixed(1)} %`).join("; ");
    console.log(`| ${bucket} | ${row(n)} | ${parts.replaceAll("|", "\\|")} |`);
  }
  if (wasmTier.size) {
    console.log(`\nwasm code by tier: ${[...wasmTier].map(([tier, k]) => `${tier} ${((100 * k) / total).toFixed(1)} %`).join(", ")} of CPU`);
    console.log("\n| wasm self time by crate / edge module | share of CPU | µs per request |\n|---|---|---|");
    for (const [name, k] of [...wasmModule].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`| \`${name}\` | ${row(k)} |`);
  }
  if (wasmPurpose.size) {
    console.log("\n| in and under wasm, by what the core was doing (innermost frame that says) | share of CPU | µs per request |\n|---|---|---|");
    for (const [name, k] of [...wasmPurpose].sort((a, b) => b[1] - a[1])) console.log(`| ${name} | ${row(k)} |`);
  }
  if (wasmInclusive.size) {
    console.log("\n| wasm functions by inclusive time (with the imports they call) | share of CPU | µs per request |\n|---|---|---|");
    for (const [name, k] of [...wasmInclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 25))) {
      console.log(`| \`${name.slice(0, 110).replaceAll("|", "\\|")}\` | ${row(k)} |`);
    }
  }
  console.log("\n| wasm functions (perf, self) | share of CPU | µs per request |\n|---|---|---|");
  for (const [name, n] of [...wasmSelf].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`| \`${name.slice(0, 110).replaceAll("|", "\\|")}\` | ${row(n)} |`);
  }
}

/** What the core is doing, by a wasm (or import) frame's name; the first that matches wins. */
const PURPOSES = [
  ["imports: randomness, clock, JS lookups (random_bytes, default_cache, Date.now, Reflect.get)", /random_bytes|default_cache|getRandomValues|__wbg_now|Reflect|wasm-to-js|__wbg_get_|__wbindgen_generic/],
  ["step wire: JSON actions out, reports in (step_wire, serde_json)", /step_wire::|serde_json|serde_core/],
  ["header lists ⇄ http::HeaderMap (header_text, request/response header rewriting)", /header_text::|forwarded_request_headers|upstream_response_headers|without_hop_by_hop|map_from_lines|lines_of/],
  ["HMAC-SHA256 (JWT, session, signature)", /sha2::|hmac::|HmacCore|digest::/],
  ["JWT verification (rest)", /auth::jwt|auth::keys/],
  ["session cookie (rest)", /core::session/],
  ["vercel.json rules", /core::rules/],
  ["signature (rest)", /ProxyRequest>::sign/],
  ["routing and decide (rest)", /pipeline::route|Routed>::decide|decide_routed/],
  ["exchange state machine (rest)", /core::exchange/],
  ["step exports (beginRequest/stepRequest, rest)", /beginRequest|stepRequest|steps::advance|begin_request|step_request/],
];

/** The part of workerd a C++ (or Rust) symbol belongs to. */
function area(sym) {
  if (sym.startsWith("Builtins_")) return "V8 builtins";
  if (/^v8::internal::(Heap|Scavenger|MarkCompact|MinorMarkSweep|.*Sweeper|.*Marking|.*Evacuat|ConcurrentMarking|.*GC)/.test(sym)) return "V8 GC";
  if (/^(v8::|_ZN2v8)/.test(sym)) return "V8 runtime and API";
  if (/tcmalloc|TCMalloc|^operator (new|delete)/.test(sym)) return "malloc (tcmalloc)";
  if (/^(workerd::jsg|_ZN7workerd3jsg)/.test(sym)) return "jsg (C++↔JS bindings)";
  if (/^(workerd::api|_ZN7workerd3api)/.test(sym)) return "APIs (fetch, Headers, Response, streams, timers…)";
  if (/^(workerd::|_ZN7workerd)/.test(sym)) return "workerd core (io context, server)";
  if (/^(kj::|capnp::|_ZN2kj|_ZN5capnp)/.test(sym)) return "kj/capnp (event loop, HTTP, async I/O)";
  if (/^<?(kj_hyper|hyper|tokio|http|bytes|futures|alloc|core|std)\b/.test(sym)) return "Rust in workerd (hyper/tokio HTTP)";
  return "other";
}

// ---- a stand-in brain ----

function stub([port]) {
  http
    .createServer((request, response) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        const url = new URL(request.url, "http://stub");
        const headers = Object.fromEntries(
          Object.entries(request.headers).map(([k, v]) => [k, /authorization|cookie|signature/.test(k) ? "<redacted>" : String(v)]),
        );
        const requestId = request.headers["x-request-id"] ?? "stub";
        const body = JSON.stringify({
          method: request.method, path: url.pathname, query: url.search ? url.search.slice(1) : null,
          headers, body_bytes: Buffer.concat(chunks).length, body: null, request_id: requestId,
        });
        const status = url.pathname === "/ready" || url.pathname.startsWith("/api/v1/diag/echo") ? 200 : 404;
        response.writeHead(status, { "content-type": "application/json", "x-request-id": requestId, "content-length": Buffer.byteLength(body) });
        response.end(body);
      });
    })
    .listen(Number(port), "127.0.0.1");
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "profile") await profile(args);
else if (mode === "perf") {
  // FILE.perf.data REQUESTS CPU_US_PER_REQUEST MAP: again from a saved run (MAP: its OUT/*-perf.map)
  const [file, requests, cpu, map] = args;
  const pid = execFileSync("perf", ["script", "-i", file, "-F", "pid"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 1 << 30 }).trim().split(/\s+/)[0];
  copyFileSync(map, `/tmp/perf-${pid}.map`);
  try {
    perfReport(file, Number(requests), Number(cpu), file.replace(/\.perf\.data$/, ".perf.folded"));
  } finally {
    unlinkSync(`/tmp/perf-${pid}.map`);
  }
} else if (mode === "analyze") {
  // FILE.cpuprofile [REQUESTS], or FILE.perf.txt REQUESTS CPU_US_PER_REQUEST
  if (args[0].endsWith(".perf.folded")) perfTables(readFileSync(args[0], "utf8"), Number(args[1]), Number(args[2]));
  else report(JSON.parse(readFileSync(args[0], "utf8")), Number(args[1] ?? 0));
}
else if (mode === "stub") stub(args);
else {
  console.error("usage: node scripts/profile-edge.mjs profile|analyze|stub …");
  process.exit(2);
}
