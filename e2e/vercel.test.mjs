// The edge as a Vercel Edge Function (api/edge.js) in Vercel's open-source runtime
// (`edge-runtime`, the sandbox `vercel dev` uses), against the real brain binary, loopback only.
// The function is bundled the way Vercel bundles it (esbuild; the `?module` wasm import becomes a
// WebAssembly.Module compiled outside the sandbox and handed in), from the same
// edge/build/index_bg.wasm that wrangler uploads and workerd runs. Run by scripts/test.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CookieJar, EDGE_SECRETS, ROOT, freePort, readSse, requireEnv, signInAtProvider, startBrain, startOidcProvider,
  stopProcess, tempDir, waitHealthy,
} from "./support.mjs";
import { startEdgeFunction as startFunction } from "./edge-runtime.mjs";
import { ANSWER, scriptedLlmConfig, startScriptedLlm } from "./scripted-llm.mjs";

describe("the edge as a Vercel Edge Function (edge-runtime)", { timeout: 180_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let llm, brain, server, limited, url, brainUrl;

  before(async () => {
    llm = await startScriptedLlm();
    const dataDir = tempDir("edgebrain-e2e-vercel-");
    const configFile = join(dataDir, "llm.toml");
    writeFileSync(configFile, scriptedLlmConfig(llm.url, "scripted-text"));
    const brainPort = await freePort();
    brain = startBrain(brainBin, brainPort, dataDir, { BRAIN_LLM_CONFIG: configFile, BRAIN_SAMPLE_TRANSACTIONS: "200" });
    await waitHealthy(`http://127.0.0.1:${brainPort}/ready`, brain, 60_000);
    brainUrl = `http://127.0.0.1:${brainPort}`;
    const env = { ...EDGE_SECRETS, BRAIN_URL: brainUrl, ROUTES: '[{"path":"/api/v1/diag/*","cache":{"ttl_secs":60}}]' };
    server = await startFunction(env);
    url = server.url.replace(/\/$/, "");
    limited = await startFunction({ ...env, RATE_LIMITS: '[{"name":"default","limit":10,"window_secs":60}]' });
  });

  after(async () => {
    await server?.close();
    await limited?.close();
    await stopProcess(brain);
    await llm?.close();
  });

  test("the function loads the very wasm that wrangler deploys", () => {
    const wrangler = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
    assert.match(wrangler, /^main = "edge\/build\/worker\.mjs"$/m);
    const worker = readFileSync(join(ROOT, "edge/build/worker.mjs"), "utf8");
    assert.match(worker, /from "\.\/index_bg\.wasm"/, "worker.mjs imports edge/build/index_bg.wasm");
    const source = readFileSync(join(ROOT, "api/edge.js"), "utf8");
    assert.match(source, /from "\.\.\/edge\/build\/index_bg\.wasm\?module"/);
  });

  test("/health is answered by the edge itself", async () => {
    const response = await fetch(`${url}/health`);
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.service, "edge");
    assert.match(response.headers.get("x-request-id"), /^[0-9a-f-]{36}$/);
  });

  test("a JSON request is proxied, signed, to the brain with a session", async () => {
    const response = await fetch(`${url}/api/v1/diag/whoami`, { headers: { "x-session-id": "new" } });
    assert.equal(response.status, 200, await response.clone().text());
    const who = await response.json();
    assert.match(who.owner, /^session:/);
    assert.equal(who.user_id, null);
    assert.match(response.headers.get("x-session-id"), /^v1\./);
    // No Cache API on Vercel Edge: a route with a cache policy is a deliberate BYPASS.
    assert.equal(response.headers.get("x-edge-cache"), "BYPASS");
    // vercel.json header rules apply to the function's answers too.
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");

    const session = { "x-session-id": response.headers.get("x-session-id") };
    const query = await fetch(`${url}/api/v1/queries/sql`, {
      method: "POST",
      headers: { ...session, "content-type": "application/json" },
      body: JSON.stringify({ sql: "SELECT COUNT(*) AS n FROM transactions" }),
    });
    assert.equal(query.status, 200, await query.clone().text());
    assert.deepEqual((await query.json()).rows, [{ n: 200 }]);

    // The shared rewrite rules: /v1/* reaches /api/v1/* through the edge core.
    const rewritten = await fetch(`${url}/v1/diag/whoami`, { headers: session });
    assert.equal(rewritten.status, 200);
    assert.equal((await rewritten.json()).owner, who.owner);
  });

  test("a chat reply streams through as Server-Sent Events", async () => {
    const created = await fetch(`${url}/api/v1/threads`, {
      method: "POST",
      headers: { "x-session-id": "new", "content-type": "application/json" },
      body: JSON.stringify({ title: "vercel" }),
    });
    assert.equal(created.status, 201);
    const session = { "x-session-id": created.headers.get("x-session-id") };
    const thread = await created.json();
    const reply = await fetch(`${url}/api/v1/threads/${thread.id}/messages`, {
      method: "POST",
      headers: { ...session, "content-type": "application/json" },
      body: JSON.stringify({ content: "How many units per store?" }),
    });
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get("content-type"), /^text\/event-stream/);
    assert.equal(reply.headers.get("x-vercel-ai-ui-message-stream"), "v1");
    const deltas = [];
    const arrivals = [];
    let done = false;
    await readSse(reply, (event) => {
      if (event.data === "[DONE]") return void (done = true);
      const chunk = JSON.parse(event.data);
      if (chunk.type === "text-delta") {
        deltas.push(chunk.delta);
        arrivals.push(event.receivedAt);
      }
    });
    assert.ok(done, "the stream ends with [DONE]");
    assert.equal(deltas.join(""), ANSWER);
    // The agent's output guardrail holds back a short window and may merge paced deltas, so
    // the count is not the model's; that it arrived in several pieces over time is what counts.
    assert.ok(deltas.length >= 2, `${deltas.length} delta(s)`);
    // Unbuffered: the deltas arrived over time (the model paces them), not in one burst.
    assert.ok(arrivals.at(-1) - arrivals[0] >= 300, `deltas arrived within ${arrivals.at(-1) - arrivals[0]} ms`);
  });

  test("RATE_LIMITS without a limiter backend refuses to serve, naming the variable", async () => {
    const response = await fetch(`${limited.url.replace(/\/$/, "")}/api/v1/diag/whoami`);
    assert.equal(response.status, 500);
    const body = await response.json();
    assert.equal(body.error.code, "internal");
    assert.match(body.error.message, /RATE_LIMITS/);
  });

  test("sign-in works on Vercel's runtime too: login, callback, a signed-in call, sign-out", async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const provider = await startOidcProvider({
      clients: [{ client_id: "edgebrain-vercel", client_secret: "vercel-client-secret-0123456789", redirect_uris: [`${origin}/auth/callback`] }],
    });
    const signin = await startFunction({
      ...EDGE_SECRETS,
      BRAIN_URL: brainUrl,
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: "edgebrain-vercel",
      OIDC_CLIENT_SECRET: "vercel-client-secret-0123456789",
    }, port);
    try {
      const jar = new CookieJar();
      const call = async (path, init = {}) => {
        const response = await fetch(`${origin}${path}`, {
          redirect: "manual",
          ...init,
          headers: { cookie: jar.header(), ...(init.headers ?? {}) },
        });
        jar.take(response);
        return response;
      };
      assert.deepEqual(await (await call("/auth/me")).json(), { signin_available: true, user: null });
      const login = await call("/auth/login?return_to=/x");
      assert.equal(login.status, 302);
      const callback = new URL(await signInAtProvider(login.headers.get("location"), "vera"));
      const back = await call(callback.pathname + callback.search);
      assert.equal(back.status, 302);
      assert.equal(back.headers.get("location"), "/x");
      assert.equal((await (await call("/api/v1/session")).json()).user_id, "vera");
      const out = await call("/auth/logout", { method: "POST", headers: { "sec-fetch-site": "same-origin" } });
      assert.equal(out.status, 204);
      assert.equal((await (await call("/api/v1/session")).json()).user_id, null);
    } finally {
      await signin.close();
      await stopProcess(provider.proc);
    }
  });
});
