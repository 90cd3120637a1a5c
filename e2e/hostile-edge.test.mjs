// End-to-end attacks on the edge (issue 15, the edge's side), each against both deployments of
// the same wasm — workerd (Cloudflare) and Vercel's edge-runtime (api/edge.js) — in front of one
// real brain: identities that must never merge, bodies that must be cut whatever their framing,
// rate limits and token budgets that a fresh session must not reset, URL and header limits in
// every encoding. After every attack the edge, the function and the brain still answer /health.
// Run by scripts/test with BRAIN_BIN and EDGEBRAIN_NODE_DIR set.
import { describe, before, after, afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { readdirSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import {
  EDGE_SECRETS, eventually, freePort, json, readSse, requireEnv, startBrain, startWorkerd,
  stopProcess, tempDir, waitHealthy,
} from "./support.mjs";
import { startEdgeFunction } from "./edge-runtime.mjs";
import { scriptedLlmConfig, startScriptedLlm } from "./scripted-llm.mjs";

const TIMEOUT = () => AbortSignal.timeout(60_000);
const ISSUER = "https://idp.hostile.invalid/";
const AUDIENCE = "edgebrain-hostile";
const HS_SECRET = "hostile-idp-hs256-secret-0123456789abcdef";
const MiB = 1024 * 1024;
/** The edge's default MAX_BODY_BYTES (wrangler.toml, EdgeConfig). */
const MAX_BODY_BYTES = 10 * MiB;
/** wrangler.toml's rate limits: the default configuration is the one attacked. */
const RATE_LIMITS = [
  { name: "default", limit: 120, window_secs: 60 },
  { name: "chat", limit: 20, window_secs: 60 },
];
/**
 * A small policy for the session-harvest attack (on DELETE /api/v1/diag/echo only), so the test
 * stays a few requests long: 2 per session, 4 per network, one token back every 150 s.
 */
const HARVEST_LIMIT = { name: "harvest", limit: 2, window_secs: 600, network_limit: 4 };
const HARVEST_ROUTE = { path: "/api/v1/diag/echo", methods: ["DELETE"], rate_limit: "harvest" };

const AUTH_VARS = {
  AUTH_CONFIG: JSON.stringify({ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ["HS256"] }),
  AUTH_HS256_SECRETS: JSON.stringify([{ kid: "hostile", secret: HS_SECRET }]),
};
/** An auth-required route, as the attack used. */
const REQUIRED_WHOAMI = { path: "/api/v1/diag/whoami", auth: { mode: "required" } };

/** Subjects a valid token may carry: each must reach the brain as exactly that user. */
const ACCEPTED_SUBJECTS = ["ana maría", "Jos\u00e9", "\u6771\u4eac \u592a\u90ce", "a:b", "50%", "x".repeat(300), "\u00e9".repeat(512)];
/** Subjects the edge cannot pass on as they are: 401, never the anonymous session. */
const REFUSED_SUBJECTS = ["nul\u0000byte", "bell\u0007", "tab\there", "new\nline", "x".repeat(1025)];

/** An HS256 JWT from the (simulated) identity provider. */
function mintToken(claims) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "HS256", typ: "JWT", kid: "hostile" })}.${b64({
    iss: ISSUER, aud: AUDIENCE, sub: "someone", iat: now, exp: now + 600, ...claims,
  })}`;
  return `${input}.${createHmac("sha256", HS_SECRET).update(input).digest("base64url")}`;
}

async function assertError(response, status, code) {
  assert.equal(response.status, status, `${response.url}`);
  const body = await json(response);
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.ok(body.error.message.length > 0);
  assert.equal(body.error.request_id, response.headers.get("x-request-id"));
  return body;
}

/** The `__Host-eb_session=…` pair of a Set-Cookie header, ready for a Cookie header. */
function sessionCookie(response) {
  return (response.headers.get("set-cookie") ?? "").match(/__Host-eb_session=[^;]+/)?.[0];
}

/** A CSV body of at least `bytes` bytes, streamed in 64 KiB chunks (sent chunked: no length). */
function chunkedCsv(bytes) {
  const line = "12345,67890,abcdefghij\n";
  const chunk = new TextEncoder().encode(line.repeat(Math.ceil(65_536 / line.length)));
  let sent = 0;
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("a,b,c\n"));
    },
    pull(controller) {
      if (sent >= bytes) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

/**
 * One raw HTTP/1.1 exchange: writes `head` (and `body` chunks), resolves with the status and
 * the response text (head, and the body when it has a content-length).
 */
function rawRequest(url, head, bodyChunks = []) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 30 s")), 30_000);
    socket.on("data", (data) => {
      answer = Buffer.concat([answer, data]);
      const text = answer.toString("latin1");
      const match = text.match(/^HTTP\/1\.1 (\d{3})/);
      const headEnd = text.indexOf("\r\n\r\n");
      if (!match || headEnd < 0) return;
      const length = Number(text.slice(0, headEnd).match(/\r\ncontent-length: *(\d+)/i)?.[1] ?? 0);
      if (answer.length - (headEnd + 4) >= length) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: Number(match[1]), text });
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      // The server may close while we still write; what it answered first is the verdict.
      const match = answer.toString("latin1").match(/^HTTP\/1\.1 (\d{3})/);
      if (match) resolve({ status: Number(match[1]), text: answer.toString("latin1") });
      else reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const match = answer.toString("latin1").match(/^HTTP\/1\.1 (\d{3})/);
      resolve(match ? { status: Number(match[1]), text: answer.toString("latin1") } : { status: 0, text: "" });
    });
    socket.write(head);
    (async () => {
      for (const chunk of bodyChunks) {
        // Like a real client, stop sending once answered; yield between chunks so an answer
        // is read as soon as it arrives.
        if (socket.destroyed || answer.length > 0) return;
        if (!socket.write(chunk)) await new Promise((done) => socket.once("drain", done));
        await new Promise((done) => setImmediate(done));
      }
    })().catch(() => {});
  });
}

/**
 * [`rawRequest`] of an oversize body, up to three times while the connection breaks before any
 * byte of an answer could be read: an edge that answers early and closes with the client's
 * bytes unread resets the connection, and the reset may discard the answer on its way in (no
 * lingering close in the runtime) — a property of TCP, not of the answer, which is still
 * required to be read once.
 */
async function rawOversizeRequest(url, head, bodyChunks) {
  let last;
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    try {
      last = await rawRequest(url, head, bodyChunks);
      if (last.status !== 0) return last;
    } catch (error) {
      if (!["EPIPE", "ECONNRESET"].includes(error.code) || attempt === 3) throw error;
    }
  }
  return last;
}

describe("hostile clients against the edge (workerd and Vercel edge-runtime)", { timeout: 600_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let llm, brain, brainUrl, dataDir, workerd, vercel;
  /** The two deployments, by name: base URL and how the platform states the client address. */
  const edges = {};

  before(async () => {
    llm = await startScriptedLlm();
    dataDir = tempDir("edgebrain-hostile-edge-");
    const llmConfig = join(dataDir, "llm.toml");
    writeFileSync(llmConfig, scriptedLlmConfig(llm.url, "scripted-text"));
    const [brainPort, edgePort] = await Promise.all([freePort(), freePort()]);
    brainUrl = `http://127.0.0.1:${brainPort}`;
    brain = startBrain(brainBin, brainPort, dataDir, {
      BRAIN_LLM_CONFIG: llmConfig,
      BRAIN_SAMPLE_TRANSACTIONS: "200",
      // Any finished turn exhausts a budget: the second turn of a budget key is refused.
      BRAIN_BUDGET_TOKENS_PER_OWNER: "1",
    });
    workerd = startWorkerd("hostile-edge", edgePort, {
      BRAIN_URL: brainUrl,
      ...AUTH_VARS,
      RATE_LIMITS: JSON.stringify([...RATE_LIMITS, HARVEST_LIMIT]),
      ROUTES: JSON.stringify([REQUIRED_WHOAMI, HARVEST_ROUTE, { path: "/api/v1/threads/*", rate_limit: "chat" }]),
    });
    await Promise.all([
      waitHealthy(`${brainUrl}/ready`, brain, 60_000),
      waitHealthy(`http://127.0.0.1:${edgePort}/health`, workerd, 60_000),
    ]);
    // Vercel: no Durable Objects, so no RATE_LIMITS (api/edge.js refuses to pretend).
    vercel = await startEdgeFunction({
      ...EDGE_SECRETS,
      BRAIN_URL: brainUrl,
      ...AUTH_VARS,
      ROUTES: JSON.stringify([REQUIRED_WHOAMI]),
    });
    edges.workerd = { url: `http://127.0.0.1:${edgePort}`, ipHeader: "cf-connecting-ip" };
    edges.vercel = { url: vercel.url.replace(/\/$/, ""), ipHeader: "x-real-ip" };
  });

  after(async () => {
    await vercel?.close();
    await stopProcess(workerd);
    await stopProcess(brain);
    await llm?.close();
  });

  // Every attack leaves every process alive and answering.
  afterEach(async () => {
    for (const proc of [brain, workerd]) assert.equal(proc.child.exitCode, null, `${proc.name} exited:\n${proc.output.slice(-3000)}`);
    for (const url of [`${brainUrl}/health`, `${edges.workerd.url}/health`, `${edges.vercel.url}/health`]) {
      const response = await fetch(url, { signal: TIMEOUT() });
      assert.equal(response.status, 200, url);
      await response.arrayBuffer();
    }
  });

  /** A request to `name`'s edge from client address `ip` (as that platform states it). */
  function call(name, path, { ip = "198.51.100.1", headers = {}, ...init } = {}) {
    const edge = edges[name];
    return fetch(`${edge.url}${path}`, { ...init, headers: { [edge.ipHeader]: ip, ...headers }, signal: TIMEOUT() });
  }

  /** A browser session of `name`'s edge: the cookie an anonymous request was given. */
  async function browserSession(name, ip) {
    const response = await call(name, "/api/v1/datasets", { ip });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const cookie = sessionCookie(response);
    assert.ok(cookie, "a new visitor gets a session cookie");
    return cookie;
  }

  for (const name of ["workerd", "vercel"]) {
    test(`${name}: a valid JWT with any sub is exactly that user; control characters or > 1024 bytes are 401, never the session`, async () => {
      const cookie = await browserSession(name);
      const whoami = (token, path = "/api/v1/diag/whoami") =>
        call(name, path, { headers: { cookie, authorization: `Bearer ${token}` } });
      let sessionId;
      for (const sub of ACCEPTED_SUBJECTS) {
        const response = await whoami(mintToken({ sub }));
        assert.equal(response.status, 200, `${JSON.stringify(sub)}: ${await response.clone().text()}`);
        const who = await json(response);
        assert.equal(who.user_id, sub);
        assert.equal(who.owner, `user:${sub}`);
        assert.equal(who.budget_key, who.owner);
        sessionId ??= who.session_id;
        assert.equal(who.session_id, sessionId, "one browser session throughout");
      }
      for (const sub of REFUSED_SUBJECTS) {
        // On the auth-required route, and on an optional one: refused, not downgraded.
        for (const path of ["/api/v1/diag/whoami", "/api/v1/datasets"]) {
          const response = await whoami(mintToken({ sub }), path);
          await assertError(response, 401, "unauthorized");
          assert.match(response.headers.get("www-authenticate"), /invalid_token/, `${JSON.stringify(sub)} ${path}`);
        }
      }
      // A scope spelled like a role must not pass for that role.
      const disguised = await whoami(mintToken({ sub: "mallory", scope: "read role:admin" }));
      await assertError(disguised, 401, "unauthorized");
    });

    test(`${name}: two users on one browser session never read each other's private datasets`, async () => {
      const cookie = await browserSession(name);
      const as = (sub) => ({ cookie, ...(sub ? { authorization: `Bearer ${mintToken({ sub })}` } : {}) });
      const [owner, other] = ["ana maría", "ana maria"];
      const table = `private_${name}_${randomBytes(4).toString("hex")}`;
      const created = await call(name, `/api/v1/datasets?name=${table}`, {
        method: "POST", headers: { ...as(owner), "content-type": "text/csv" }, body: "secret\n42\n",
      });
      assert.equal(created.status, 201, await created.clone().text());
      const { id } = await json(created);

      for (const intruder of [as(other), as(null)]) {
        const listed = await json(await call(name, "/api/v1/datasets", { headers: intruder }));
        assert.ok(listed.datasets.every((d) => d.id !== id), "listed to another caller");
        await assertError(await call(name, `/api/v1/datasets/${id}`, { headers: intruder }), 404, "not_found");
        const query = await call(name, "/api/v1/queries/sql", {
          method: "POST", headers: { ...intruder, "content-type": "application/json" },
          body: JSON.stringify({ sql: `SELECT * FROM ${table}` }),
        });
        await assertError(query, 404, "not_found");
      }
      const own = await call(name, "/api/v1/queries/sql", {
        method: "POST", headers: { ...as(owner), "content-type": "application/json" },
        body: JSON.stringify({ sql: `SELECT secret FROM ${table}` }),
      });
      assert.equal(own.status, 200);
      assert.deepEqual((await json(own)).rows, [{ secret: 42 }]);
    });

    test(`${name}: bodies past MAX_BODY_BYTES are cut with 413 whatever their framing, and nothing is stored`, async () => {
      const first = await call(name, "/api/v1/datasets", { headers: { "x-session-id": "new" } });
      const session = { "x-session-id": first.headers.get("x-session-id") };
      await first.arrayBuffer();
      // The default object store keeps `datasets/<id>/v<version>-<nonce>.parquet` under the data dir.
      const parquetFiles = () => readdirSync(join(dataDir, "datasets"), { recursive: true }).filter((f) => String(f).endsWith(".parquet")).length;
      const upload = (table, body, extra = {}) =>
        call(name, `/api/v1/datasets?name=${table}`, {
          method: "POST", headers: { ...session, "content-type": "text/csv", ...extra }, body, duplex: "half",
        });

      // A chunked upload under the limit streams through and is stored: the limit is no ban.
      const before = parquetFiles();
      const small = await upload("chunked_2mib", chunkedCsv(2 * MiB));
      assert.equal(small.status, 201, await small.clone().text());
      await small.arrayBuffer();

      // Over the limit, the edge answers while the client still writes and may close the
      // connection under it: a raw client reads what was answered before its writes failed
      // (fetch would report only the failed write).
      const line = Buffer.from("12345,67890,abcdefghij\n".repeat(2850)); // 65,550 bytes
      for (const [table, bytes] of [["chunked_11mib", 11 * MiB], ["chunked_20mb", 20_000_000]]) {
        const chunks = ["6\r\na,b,c\n\r\n"];
        for (let sent = 0; sent < bytes; sent += line.length) chunks.push(`${line.length.toString(16)}\r\n`, line, "\r\n");
        chunks.push("0\r\n\r\n");
        const { status, text } = await rawOversizeRequest(edges[name].url, [
          `POST /api/v1/datasets?name=${table} HTTP/1.1`, "Host: 127.0.0.1",
          `${edges[name].ipHeader}: 198.51.100.1`, `x-session-id: ${session["x-session-id"]}`,
          "content-type: text/csv", "transfer-encoding: chunked", "", "",
        ].join("\r\n"), chunks);
        assert.equal(status, 413, text);
        assert.match(text, /"code":"payload_too_large"/);
        assert.match(text, new RegExp(`${MAX_BODY_BYTES} bytes`));
      }
      // A declared length over the limit is refused on the headers alone: no byte of the body
      // is sent (a client still writing would race the edge closing the connection).
      const declared = await rawRequest(edges[name].url, [
        "POST /api/v1/datasets?name=declared_11mib HTTP/1.1", "Host: 127.0.0.1",
        `${edges[name].ipHeader}: 198.51.100.1`, `x-session-id: ${session["x-session-id"]}`,
        "content-type: text/csv", `content-length: ${11 * MiB}`, "", "",
      ].join("\r\n"));
      assert.equal(declared.status, 413);
      assert.match(declared.text, /"code":"payload_too_large"/);

      const names = (await json(await call(name, "/api/v1/datasets", { headers: session }))).datasets.map((d) => d.name);
      assert.ok(names.includes("chunked_2mib"), names.join());
      for (const table of ["chunked_11mib", "chunked_20mb", "declared_11mib"]) assert.ok(!names.includes(table), `${table} was stored`);
      await eventually("only the small upload's file is on disk", () => parquetFiles() === before + 1, 10_000);
    });

    test(`${name}: a body framed both chunked and by a short content-length is never stored past the limit`, async () => {
      const url = edges[name].url;
      const chunk = Buffer.from("12345,67890\n".repeat(5462)); // 65,544 bytes
      const chunks = [];
      for (let sent = 0; sent < 11 * MiB; sent += chunk.length) chunks.push(`${chunk.length.toString(16)}\r\n`, chunk, "\r\n");
      chunks.push("0\r\n\r\n");
      const table = `smuggled_${name}`;
      // The default object store keeps `datasets/<id>/v<version>-<nonce>.parquet` under the data dir.
      const parquetFiles = () => readdirSync(join(dataDir, "datasets"), { recursive: true }).filter((f) => String(f).endsWith(".parquet")).length;
      const before = parquetFiles();
      const head = [
        `POST /api/v1/datasets?name=${table} HTTP/1.1`, `Host: 127.0.0.1`, `${edges[name].ipHeader}: 198.51.100.77`,
        "x-session-id: new", "content-type: text/csv", "content-length: 100", "transfer-encoding: chunked", "", "",
      ].join("\r\n");
      const { status } = await rawOversizeRequest(url, head, ["a,b\n".length.toString(16) + "\r\na,b\n\r\n", ...chunks]);
      assert.ok([400, 413].includes(status), `status ${status}`);
      // Whatever the runtime made of the framing, the brain stored nothing.
      assert.equal(parquetFiles(), before);
    });

    test(`${name}: the client network comes from the platform's own header, IPv6 per /64`, async () => {
      const network = async (headers) => {
        const response = await call(name, "/api/v1/diag/echo", { headers });
        assert.equal(response.status, 200);
        const report = await json(response);
        return report.headers.find(([key]) => key === "x-edgebrain-network")?.[1];
      };
      const own = edges[name].ipHeader;
      const foreign = own === "x-real-ip" ? "cf-connecting-ip" : "x-real-ip";
      assert.equal(await network({ [own]: "203.0.113.5", [foreign]: "192.0.2.1" }), "203.0.113.5");
      assert.equal(await network({ [own]: "2001:db8:5:6:aaaa::1" }), "2001:db8:5:6::/64");
      // A client's own claim in an identity header is dropped.
      assert.equal(await network({ [own]: "203.0.113.5", "x-edgebrain-network": "10.0.0.1" }), "203.0.113.5");
      // No usable address: one shared, fail-closed key.
      assert.equal(await network({ [own]: "not-an-address" }), "unknown");
    });

    test(`${name}: a fresh session brings no fresh token budget; the network's budget counts`, async () => {
      const ip = name === "workerd" ? "203.0.113.10" : "203.0.113.20";
      const turn = async (clientIp) => {
        const created = await call(name, "/api/v1/threads", {
          ip: clientIp, method: "POST", headers: { "x-session-id": "new", "content-type": "application/json" },
          body: JSON.stringify({ title: "budget" }),
        });
        assert.equal(created.status, 201, await created.clone().text());
        const session = { "x-session-id": created.headers.get("x-session-id") };
        const thread = await json(created);
        const reply = await call(name, `/api/v1/threads/${thread.id}/messages`, {
          ip: clientIp, method: "POST", headers: { ...session, "content-type": "application/json" },
          body: JSON.stringify({ content: "How many units per store?" }),
        });
        return { reply, session };
      };
      const first = await turn(ip);
      assert.equal(first.reply.status, 200, await first.reply.clone().text());
      await readSse(first.reply, () => {});
      // The run's tokens are recorded when it finishes; wait until the brain counts them.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { usage } = await json(await call(name, "/api/v1/usage", { ip, headers: first.session }));
        if (usage.input_tokens + usage.output_tokens > 0) break;
        assert.ok(Date.now() < deadline, "the first turn's tokens were never recorded");
        await new Promise((resolve) => setTimeout(resolve, 100)); // poll interval while the run is recorded
      }
      // A new session from the same network: refused before the model is called.
      const second = await turn(ip);
      await assertError(second.reply, 429, "rate_limited");
      // Another network has its own budget.
      const elsewhere = await turn(name === "workerd" ? "203.0.113.11" : "203.0.113.21");
      assert.equal(elsewhere.reply.status, 200);
      await readSse(elsewhere.reply, () => {});
    });

    test(`${name}: URL, query and header limits hold in every encoding`, async () => {
      const url = edges[name].url;
      // Raw UTF-8 in the request target: 6,000 bytes on the wire, 18,000 once percent-encoded.
      const rawPath = Buffer.concat([
        Buffer.from("GET /api/v1/diag/echo/"), Buffer.from("\u00e9".repeat(3000)),
        Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1\r\n${edges[name].ipHeader}: 198.51.100.9\r\n\r\n`),
      ]);
      const raw = await rawRequest(url, rawPath);
      assert.ok([400, 414, 431].includes(raw.status), `raw UTF-8 path: ${raw.status}`);
      // Percent-encoded forms count at their encoded length.
      const encodedQuery = await call(name, `/api/v1/diag/echo?q=${"%41".repeat(3000)}`);
      if (name === "workerd") await assertError(encodedQuery, 414, "uri_too_long");
      else assert.ok([414, 431].includes(encodedQuery.status), `${encodedQuery.status}`);
      await encodedQuery.arrayBuffer().catch(() => {});
      const encodedPath = await call(name, `/api/v1/diag/echo/${"%C3%A9".repeat(1500)}`);
      if (name === "workerd") await assertError(encodedPath, 414, "uri_too_long");
      else assert.ok([414, 431].includes(encodedPath.status), `${encodedPath.status}`);
      await encodedPath.arrayBuffer().catch(() => {});
      // Many tiny fields, far under the byte limit, are refused by their count (the brain's
      // HTTP server would refuse them outside the error shape).
      const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, "1"]));
      const body = await assertError(await call(name, "/api/v1/diag/echo", { headers: many }), 431, "headers_too_large");
      assert.match(body.error.message, /header fields/);
      // A few large ones: the edge's byte limit on workerd; Node's own (16 KiB) under edge-runtime.
      const large = { "x-a": "v".repeat(17_000), "x-b": "v".repeat(17_000) };
      const bytes = await call(name, "/api/v1/diag/echo", { headers: large });
      if (name === "workerd") await assertError(bytes, 431, "headers_too_large");
      else assert.equal(bytes.status, 431);
      await bytes.arrayBuffer().catch(() => {});
    });
  }

  test("workerd: harvested sessions share their network's bucket; other networks and signed-in users keep theirs", async () => {
    const ip = "198.51.100.60";
    const harvested = [];
    for (let i = 0; i < 2 * HARVEST_LIMIT.network_limit; i += 1) {
      const minted = await call("workerd", "/api/v1/diag/echo", { ip, headers: { "x-session-id": "new" } });
      assert.equal(minted.status, 200);
      harvested.push(minted.headers.get("x-session-id"));
      await minted.arrayBuffer();
    }
    const attack = (token, from = ip, headers = {}) =>
      call("workerd", "/api/v1/diag/echo", { method: "DELETE", ip: from, headers: { "x-session-id": token, ...headers } });
    // Each session is established and has a full bucket of its own, yet the network's caps them.
    for (const [i, token] of harvested.entries()) {
      const response = await attack(token);
      if (i < HARVEST_LIMIT.network_limit) {
        assert.equal(response.status, 200, `session ${i}`);
        await response.arrayBuffer();
        continue;
      }
      await assertError(response, 429, "rate_limited");
      assert.equal(response.headers.get("ratelimit-policy"), `"harvest/network";q=${HARVEST_LIMIT.network_limit};w=${HARVEST_LIMIT.window_secs}`);
      assert.match(response.headers.get("ratelimit"), /^"harvest\/network";r=0;t=\d+$/);
      const retryAfter = Number(response.headers.get("retry-after"));
      assert.ok(retryAfter > 0 && retryAfter <= HARVEST_LIMIT.window_secs / HARVEST_LIMIT.network_limit, `retry-after ${retryAfter}`);
    }
    // The same session from another network, and a signed-in user on this one, still pass.
    const elsewhere = await attack(harvested.at(-1), "198.51.100.61");
    assert.equal(elsewhere.status, 200, "another network has its own bucket");
    // Both buckets are asked at once, so the refused request above took this session's first
    // token: refusals cost the attacker too.
    assert.match(elsewhere.headers.get("ratelimit"), /^"harvest";r=0;t=\d+$/);
    await elsewhere.arrayBuffer();
    const user = await attack(harvested.at(-1), ip, { authorization: `Bearer ${mintToken({ sub: "harvest-user" })}` });
    assert.equal(user.status, 200, "a signed-in user is counted by its own bucket only");
    assert.match(user.headers.get("ratelimit"), /^"harvest";r=1;t=\d+$/);
    await user.arrayBuffer();
    const health = await fetch(`${brainUrl}/health`, { signal: TIMEOUT() });
    assert.equal(health.status, 200);
    await health.arrayBuffer();
  });

  test("workerd: callers without an established session are counted by network (IPv6 per /64)", async () => {
    const echo = (ip, headers = {}) => call("workerd", "/api/v1/diag/echo", { ip, headers });
    // Sends `count` requests (10 at a time), answers the statuses seen.
    const burst = async (count, request) => {
      const statuses = [];
      for (let i = 0; i < count; i += 10) {
        const batch = await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => request(i + j)));
        for (const response of batch) {
          statuses.push(response.status);
          if (response.status === 429) await assertError(response, 429, "rate_limited");
          else await response.arrayBuffer();
        }
      }
      return statuses;
    };
    const limit = RATE_LIMITS[0].limit;
    const assertLimited = (statuses, startedAt, what) => {
      // The bucket refills limit/window per second while the burst runs.
      const refilled = Math.ceil(((Date.now() - startedAt) / 1000) * (limit / RATE_LIMITS[0].window_secs)) + 1;
      const allowed = statuses.filter((s) => s === 200).length;
      assert.ok(statuses.every((s) => s === 200 || s === 429), `${what}: ${statuses}`);
      assert.ok(allowed >= limit - 1 && allowed <= limit + refilled, `${what}: ${allowed} of ${statuses.length} allowed`);
      assert.ok(statuses.includes(429), `${what}: never limited`);
    };

    // A session the client was given before the flood keeps its own bucket.
    const given = await echo("198.51.100.30", { "x-session-id": "new" });
    const token = given.headers.get("x-session-id");
    await given.arrayBuffer();

    let startedAt = Date.now();
    assertLimited(await burst(130, () => echo("198.51.100.30")), startedAt, "no cookie");
    startedAt = Date.now();
    assertLimited(await burst(130, () => echo("198.51.100.31", { "x-session-id": "new" })), startedAt, "x-session-id: new");
    startedAt = Date.now();
    const v6 = (i) => `2001:db8:77:1:${(i + 1).toString(16)}:${randomBytes(2).toString("hex")}::1`;
    assertLimited(await burst(130, (i) => echo(v6(i))), startedAt, "IPv6 addresses of one /64");

    const otherPrefix = await echo("2001:db8:77:2::1");
    assert.equal(otherPrefix.status, 200, "another /64 has its own bucket");
    await otherPrefix.arrayBuffer();
    const established = await echo("198.51.100.30", { "x-session-id": token });
    assert.equal(established.status, 200, "an established session is counted by itself");
    assert.match(established.headers.get("ratelimit"), /^"default";r=\d+;t=\d+$/);
    await established.arrayBuffer();
  });
});

// Header values are bytes; workerd maps them to JS strings as UTF-8, Node (edge-runtime) as
// latin-1. The edge converts by the runtime's own rule (edge/src/header_text.rs), so UTF-8
// bytes — characters above U+00FF included — cross it unchanged in both directions.
describe("header bytes cross the edge unchanged (workerd and Vercel edge-runtime)", { timeout: 120_000 }, () => {
  /** UTF-8 bytes with 2-, 3- and 4-byte sequences. */
  const UTF8 = Buffer.from("v=caf\u00e9; \u6771\u4eac \u2603 \u{1F600}", "utf8");
  let upstream, workerd, vercel;
  const edges = {};
  /** The `x-bytes` request header the stand-in brain last received, as bytes. */
  let received;

  before(async () => {
    // A stand-in for the brain that answers with UTF-8 header bytes (the brain sends none of
    // its own) and records the bytes it was sent. Raw sockets: Node's HTTP server would write
    // header strings as UTF-8, whatever bytes they stand for.
    upstream = createServer((socket) => {
      let request = Buffer.alloc(0);
      socket.on("data", (data) => {
        request = Buffer.concat([request, data]);
        const end = request.indexOf("\r\n\r\n");
        if (end < 0) return;
        const line = request.subarray(0, end).toString("latin1").split("\r\n").find((l) => /^x-bytes:/i.test(l));
        received = Buffer.from((line ?? "").replace(/^x-bytes:[ \t]*/i, ""), "latin1");
        socket.end(Buffer.concat([
          Buffer.from("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\nx-bytes: "),
          UTF8,
          Buffer.from("\r\n\r\n{}"),
        ]));
      });
      socket.on("error", () => {});
    });
    const upstreamPort = await freePort();
    await new Promise((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
    const edgePort = await freePort();
    workerd = startWorkerd("header-bytes", edgePort, { BRAIN_URL: upstreamUrl });
    await waitHealthy(`http://127.0.0.1:${edgePort}/health`, workerd, 60_000);
    vercel = await startEdgeFunction({ ...EDGE_SECRETS, BRAIN_URL: upstreamUrl });
    edges.workerd = `http://127.0.0.1:${edgePort}`;
    edges.vercel = vercel.url.replace(/\/$/, "");
  });

  after(async () => {
    await vercel?.close();
    await stopProcess(workerd);
    await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve()));
  });

  for (const name of ["workerd", "vercel"]) {
    test(`${name}: UTF-8 header bytes reach the brain and the client byte for byte`, async () => {
      received = undefined;
      const { host, port } = new URL(edges[name]);
      // Raw bytes on the socket: no client library's idea of header text in between.
      const head = Buffer.concat([
        Buffer.from(`GET /api/v1/diag/echo HTTP/1.1\r\nhost: ${host}\r\nx-real-ip: 198.51.100.9\r\nx-bytes: `),
        UTF8,
        Buffer.from("\r\nconnection: close\r\n\r\n"),
      ]);
      const { status, text } = await rawRequest(`http://127.0.0.1:${port}`, head);
      assert.equal(status, 200, text);
      assert.deepEqual(received, UTF8, `the brain got ${received?.toString("hex")}`);
      const line = text.split("\r\n").find((l) => /^x-bytes:/i.test(l));
      assert.ok(line, text);
      const value = Buffer.from(line.replace(/^x-bytes:[ \t]*/i, ""), "latin1");
      assert.deepEqual(value, UTF8, `the client got ${value.toString("hex")}`);
    });
  }
});
