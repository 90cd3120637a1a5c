// Process and HTTP helpers for the end-to-end tests: real brain binary, real workerd (via
// wrangler dev), loopback only. Readiness is polled with deadlines; nothing sleeps blindly.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { writeWorkerdConfig } from "../scripts/workerd-config.mjs";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The secrets a test edge and brain share (the edge signs, the brain verifies). */
export const EDGE_SIGNING_SECRET = "e2e-edge-signing-secret-0123456789abcdef";
export const EDGE_SECRETS = {
  EDGE_SIGNING_SECRETS: EDGE_SIGNING_SECRET,
  SESSION_KEYS: "e2e1:e2e-session-key-0123456789abcdef0123456789",
  // The suite can run against either executor of the edge's core (edge/js/shim.mjs).
  ...(process.env.EDGE_EXECUTOR ? { EDGE_EXECUTOR: process.env.EDGE_EXECUTOR } : {}),
};

export function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (scripts/test sets it)`);
  return value;
}

// Ports this process handed out already (a port is given to one server only).
const handedOut = new Set();

/**
 * A port that was free a moment ago, chosen below the kernel's ephemeral range (32768–60999 on
 * Linux): ports the OS assigns for `listen(0)` and outgoing connections (wrangler and workerd
 * open several) then never take the port before the server we pass it to binds it.
 */
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const free = await new Promise((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port found in 20000–31999");
}

/** Spawns a long-running process in its own process group, capturing its output. */
/**
 * Starts `command`; `env` adds to this process's environment, and a `null` value removes one.
 * `stdin: "pipe"` gives the child a stdin this process holds open (for servers that stop when
 * it closes); by default it reads nothing.
 */
export function startProcess(name, command, args, env, { stdin = "ignore" } = {}) {
  const merged = { ...process.env, ...env };
  for (const [key, value] of Object.entries(merged)) if (value === null) delete merged[key];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: merged,
    stdio: [stdin, "pipe", "pipe"],
    detached: true,
  });
  const proc = { name, child, output: "", exited: null };
  // EDGEBRAIN_E2E_LOG_DIR keeps every process's whole output on disk, for diagnosing a run.
  const logDir = process.env.EDGEBRAIN_E2E_LOG_DIR;
  const log = logDir ? createWriteStream(join(logDir, `${name}-${child.pid}.log`)) : null;
  const append = (chunk) => {
    log?.write(chunk);
    proc.output += chunk.toString();
    // Keep memory bounded on chatty processes.
    if (proc.output.length > 4_000_000) proc.output = proc.output.slice(-2_000_000);
  };
  child.stdout.on("data", append);
  child.stderr.on("data", append);
  proc.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return proc;
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit status. */
export async function stopProcess(proc, graceMs = 10_000) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return proc && proc.exited;
  try {
    process.kill(-proc.child.pid, "SIGTERM");
  } catch {
    return proc.exited;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-proc.child.pid, "SIGKILL");
    } catch {}
  }, graceMs);
  const status = await proc.exited;
  clearTimeout(timer);
  return status;
}

/** Polls `url` until it answers 200 or the deadline passes; fails with the process's output. */
export async function waitHealthy(url, proc, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  let lastError = "no attempt";
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) break;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
      lastError = `status ${response.status}`;
    } catch (error) {
      lastError = String(error.cause ?? error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // poll interval, not a readiness guess
  }
  throw new Error(`${proc.name} not healthy at ${url} (${lastError}); output:\n${proc.output.slice(-4000)}`);
}

/** A response's JSON body; fails with the status and the start of the text when it is not JSON. */
export async function json(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (status ${response.status}): ${text.slice(0, 500)}`);
  }
}

/** Polls a condition with a deadline. */
export async function eventually(what, check, deadlineMs = 5_000) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The temporary folders this test file made: removed when it exits, unless it failed. */
const tempDirs = [];
process.once("exit", (code) => {
  if (code !== 0 || process.exitCode) {
    if (tempDirs.length) console.error(`kept for a look at the failure: ${tempDirs.join(" ")}`);
    return;
  }
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      console.error(`could not remove ${dir}: ${error.message}`);
    }
  }
});

/** A new folder under the system's temporary folder (a brain's data, a workerd config, …). */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function startBrain(brainBin, port, dataDir, extraEnv = {}) {
  return startProcess("brain", brainBin, [], {
    BRAIN_BIND: `127.0.0.1:${port}`,
    BRAIN_DATA_DIR: dataDir,
    BRAIN_EDGE_SECRETS: EDGE_SIGNING_SECRET,
    // The authority the edge signs for when its BRAIN_URL is http://127.0.0.1:<port>: a
    // signature bound to any other brain is refused (tests of another binding override it).
    BRAIN_EDGE_AUTHORITY: `127.0.0.1:${port}`,
    // A fresh data directory generates the sample datasets; keep them small for the suite.
    BRAIN_SAMPLE_TRANSACTIONS: "1000",
    // The suites probe the edge's pass-through with the diagnostics (echo, stream, whoami) as
    // anonymous callers; by default they are for signed-in operators only (the brain's
    // `diag::access_*` tests), as `web.test.mjs` (the product as users get it) checks.
    BRAIN_DIAG: "open",
    RUST_LOG: "info",
    ...extraEnv,
  });
}

/** The edge in the real Workers runtime: wrangler dev (workerd) with vars overridden. */
export async function startEdge(name, port, vars) {
  const nodeDir = requireEnv("EDGEBRAIN_NODE_DIR");
  const inspectorPort = await freePort();
  const varArgs = Object.entries({ ...EDGE_SECRETS, ...vars }).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  return startProcess(
    name,
    join(nodeDir, "node"),
    [
      join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--inspector-port", String(inspectorPort),
      "--show-interactive-dev-session=false",
      "--persist-to", tempDir(`edgebrain-${name}-`),
      ...varArgs,
    ],
    { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", PATH: `${nodeDir}:${process.env.PATH}` },
  );
}

/**
 * The edge in workerd directly (same worker.mjs and wasm that wrangler uploads, config from
 * scripts/workerd-config.mjs). No wrangler dev proxy (miniflare's entry worker) in between:
 * what the client sees is what the edge answered.
 */
export function startWorkerd(name, port, vars) {
  const config = writeWorkerdConfig(tempDir(`edgebrain-${name}-`), port, { ...EDGE_SECRETS, ...vars });
  return startProcess(name, join(ROOT, "node_modules/.bin/workerd"), ["serve", config], {});
}

/**
 * The whole stack on loopback for tests that need a real model: the local llama.cpp server
 * (SmolLM2 from scripts/setup-llm), the brain using it, and the edge in workerd in front.
 * Resolves once all three answer their health checks; `stop()` stops them in reverse order.
 */
export async function startLocalLlmStack(name, brainBin) {
  const llmDir = join(process.env.EDGEBRAIN_CACHE ?? join(homedir(), ".cache/edgebrain"), "llm");
  const [llmPort, brainPort, edgePort] = await Promise.all([freePort(), freePort(), freePort()]);
  const llm = startProcess("llm", join(llmDir, "venv/bin/python"), [
    join(ROOT, "scripts/llm-server.py"),
    "--model", join(llmDir, "models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "--port", String(llmPort),
  ], {});
  const stack = { llm, brain: undefined, edge: undefined, edgeUrl: `http://127.0.0.1:${edgePort}` };
  stack.stop = async () => {
    await stopProcess(stack.edge);
    await stopProcess(stack.brain);
    await stopProcess(stack.llm);
  };
  try {
    await waitHealthy(`http://127.0.0.1:${llmPort}/health`, llm, 120_000);
    const brainUrl = `http://127.0.0.1:${brainPort}`;
    stack.brain = startBrain(brainBin, brainPort, tempDir(`edgebrain-${name}-brain-`), {
      BRAIN_LOCAL_LLM_URL: `http://127.0.0.1:${llmPort}/v1`,
      BRAIN_LOCAL_LLM_MAX_OUTPUT_TOKENS: "24",
    });
    stack.edge = startWorkerd(`${name}-edge`, edgePort, { BRAIN_URL: brainUrl });
    await Promise.all([
      waitHealthy(`${brainUrl}/ready`, stack.brain, 60_000),
      waitHealthy(`${stack.edgeUrl}/health`, stack.edge, 60_000),
    ]);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

/**
 * The S3-compatible server (moto, from scripts/setup-s3) on 127.0.0.1: scripts/s3-server.py
 * prints its port and serves until its stdin closes (`child.stdin.end()` stops it).
 */
export function startS3() {
  const cache = process.env.EDGEBRAIN_CACHE ?? join(homedir(), ".cache/edgebrain");
  const child = spawn(join(cache, "s3/venv/bin/python"), [join(ROOT, "scripts/s3-server.py")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let line = "";
    const timer = setTimeout(() => reject(new Error("moto did not report its port in 60 s")), 60_000);
    child.once("exit", (code) => reject(new Error(`moto exited (${code}) before reporting its port`)));
    child.stdout.on("data", (data) => {
      line += data;
      if (!line.includes("\n")) return;
      clearTimeout(timer);
      resolve({ child, endpoint: `http://127.0.0.1:${Number(line.trim())}` });
    });
  });
}

/**
 * The OpenID Connect provider of scripts/oidc-provider.mjs (the pinned npm oidc-provider) on
 * 127.0.0.1: `config` is its JSON config (see the script). Resolves once it serves, with
 * `{ issuer, proc }`; stop it with `stopProcess(proc)` (it also stops when this process's end of
 * its stdin closes). Runs on EDGEBRAIN_NODE_DIR's node when set, else on this process's node.
 */
export function startOidcProvider(config, deadlineMs = 30_000) {
  const node = process.env.EDGEBRAIN_NODE_DIR ? join(process.env.EDGEBRAIN_NODE_DIR, "node") : process.execPath;
  const proc = startProcess("oidc-provider", node, [join(ROOT, "scripts/oidc-provider.mjs"), JSON.stringify(config)], {}, {
    stdin: "pipe",
  });
  return new Promise((resolve, reject) => {
    let stdout = "";
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.child.stdout.off("data", onData);
      stopProcess(proc).then(() => reject(new Error(`oidc-provider ${why}; output:\n${proc.output.slice(-4000)}`)));
    };
    const timer = setTimeout(() => fail(`did not report its issuer in ${deadlineMs} ms`), deadlineMs);
    const onData = (chunk) => {
      stdout += chunk;
      const newline = stdout.indexOf("\n");
      if (newline === -1) return;
      try {
        const { issuer } = JSON.parse(stdout.slice(0, newline));
        if (!issuer?.startsWith("http://127.0.0.1:")) throw new Error(`unexpected issuer ${issuer}`);
        settled = true;
        clearTimeout(timer);
        proc.child.stdout.off("data", onData);
        resolve({ issuer, proc });
      } catch (error) {
        fail(`printed an unexpected first line (${error.message})`);
      }
    };
    proc.child.stdout.on("data", onData);
    proc.exited.then(({ code, signal }) => fail(`exited (${code ?? signal}) before reporting its issuer`));
  });
}

const HTML_ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };
const unescapeHtml = (text) => text.replace(/&(amp|lt|gt|quot|#39);/g, (entity) => HTML_ENTITIES[entity]);

/** The first POST form of an HTML page: its absolute action URL and its inputs' names and values. */
function postForm(html, pageUrl) {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  for (const [, formAttributes, body] of html.matchAll(form)) {
    const attrs = htmlAttributes(formAttributes);
    if ((attrs.method ?? "get").toLowerCase() !== "post") continue;
    const inputs = [...body.matchAll(/<input\b([^>]*)>/gi)].map(([, inputAttributes]) => htmlAttributes(inputAttributes));
    return { action: new URL(attrs.action ?? "", pageUrl), inputs: inputs.filter((input) => input.name) };
  }
  return null;
}

function htmlAttributes(text) {
  const attrs = {};
  for (const [, name, value] of text.matchAll(/([\w-]+)(?:\s*=\s*"([^"]*)")?/g)) attrs[name.toLowerCase()] = unescapeHtml(value ?? "");
  return attrs;
}

/**
 * Signs in at the provider of `startOidcProvider` as a browser would, with plain fetch and a
 * minimal cookie jar: follows `authorizeUrl`'s redirects by hand, submits the login form with
 * `login` (any password: the dev interactions do not check it) and the consent form if asked.
 * Resolves with the URL the provider finally redirects to: the client's redirect_uri with `code`
 * and `state` (or `error`). At most `maxRequests` requests, each with a timeout.
 */
export async function signInAtProvider(authorizeUrl, login, { maxRequests = 10, requestTimeoutMs = 5_000 } = {}) {
  const start = new URL(authorizeUrl);
  const redirectUri = start.searchParams.get("redirect_uri");
  const isRedirectUri = (url) => redirectUri !== null && `${url.origin}${url.pathname}` === redirectUri.split(/[?#]/)[0];
  const jar = new Map(); // "path name" -> { name, value, path }
  let request = { url: start, method: "GET", body: undefined };
  const steps = [];
  for (let count = 0; count < maxRequests; count++) {
    const headers = {};
    const cookies = [...jar.values()].filter((cookie) => request.url.pathname.startsWith(cookie.path));
    if (cookies.length) headers.cookie = cookies.map(({ name, value }) => `${name}=${value}`).join("; ");
    if (request.body) headers["content-type"] = "application/x-www-form-urlencoded";
    const response = await fetch(request.url, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    steps.push(`${request.method} ${request.url.pathname} -> ${response.status}`);
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair, ...attributes] = setCookie.split(";").map((part) => part.trim());
      const eq = pair.indexOf("=");
      const cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: "/" };
      let expired = cookie.value === "";
      for (const attribute of attributes) {
        const [key, value = ""] = attribute.split("=");
        if (key.toLowerCase() === "path") cookie.path = value;
        if (key.toLowerCase() === "max-age" && Number(value) <= 0) expired = true;
        if (key.toLowerCase() === "expires" && Date.parse(value) <= Date.now()) expired = true;
      }
      if (expired) jar.delete(`${cookie.path} ${cookie.name}`);
      else jar.set(`${cookie.path} ${cookie.name}`, cookie);
    }
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, request.url);
      if (isRedirectUri(next) || next.origin !== start.origin) return next.href;
      request = { url: next, method: "GET", body: undefined };
      continue;
    }
    const html = await response.text();
    const form = response.status === 200 ? postForm(html, request.url) : null;
    if (!form) {
      throw new Error(`sign-in at ${start.origin} stopped (${steps.join(", ")}): ${html.slice(0, 1000)}`);
    }
    const fields = new URLSearchParams();
    for (const input of form.inputs) {
      if (input.name === "login") fields.set("login", login);
      else if (input.type === "password") fields.set(input.name, "any password");
      else fields.set(input.name, input.value ?? "");
    }
    request = { url: form.action, method: "POST", body: fields.toString() };
  }
  throw new Error(`sign-in at ${start.origin} took more than ${maxRequests} requests (${steps.join(", ")})`);
}

/** A browser's cookies for one origin: Set-Cookie in, Cookie out (Max-Age=0 deletes). */
export class CookieJar {
  cookies = new Map();
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const [name, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
      const maxAge = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith("max-age="));
      if (maxAge && Number(maxAge.split("=")[1]) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

/** Reads an SSE response, calling `onEvent({event, id, data, receivedAt})` per event. */
export async function readSse(response, onEvent) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let boundary;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const event = { event: "message", id: null, data: "", receivedAt: Date.now() };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const [field, ...rest] = line.split(":");
        const value = rest.join(":").replace(/^ /, "");
        if (field === "event") event.event = value;
        else if (field === "id") event.id = value;
        else if (field === "data") event.data += (event.data ? "\n" : "") + value;
      }
      if (event.data) onEvent(event);
    }
  }
}

/**
 * Debian's headless Chromium (`EDGEBRAIN_CHROMIUM` names another binary, e.g. on macOS) on a
 * closed network: no background connections, no component updates or sync, and no sandbox
 * (tests run as root in CI).
 */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.EDGEBRAIN_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A page in a fresh desktop browser context (1280×900, en-US, 30 s default timeout) that records
 * into `errors` the console errors and uncaught exceptions of the pages it shows under `origin`
 * (the app's must be none; an identity provider's own pages are not ours to judge).
 */
export async function newWatchedPage(browser, origin, errors) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const ours = () => page.url().startsWith(origin);
  page.on("console", (message) => {
    if (message.type() === "error" && ours()) errors.push(message.text());
  });
  page.on("pageerror", (error) => {
    if (ours()) errors.push(String(error));
  });
  return page;
}
