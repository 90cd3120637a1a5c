// End-to-end: the edge gateway (issue 3) in the real Workers runtime (wrangler dev → workerd,
// with its Cache API and Durable Objects) in front of a real brain that verifies signatures.
// Run by scripts/test with BRAIN_BIN and EDGEBRAIN_NODE_DIR set.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import {
  EDGE_SIGNING_SECRET, freePort, json, readSse, requireEnv, startBrain, startEdge, stopProcess,
  tempDir, waitHealthy,
} from "./support.mjs";

const TIMEOUT = () => AbortSignal.timeout(20_000);
const ISSUER = "https://idp.e2e.invalid/";
const AUDIENCE = "edgebrain-e2e";
const HS_SECRET = "e2e-idp-hs256-secret-0123456789abcdef";
const ALLOWED_ORIGIN = "https://app.e2e.invalid";

/** An ES256 key the (simulated) identity provider publishes in its JWKS under `kid`. */
function ecKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" } };
}

function mintEs256(key, claims = {}) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "ES256", typ: "JWT", kid: key.kid })}.${b64({
    iss: ISSUER, aud: AUDIENCE, sub: "jwks-user", iat: now, exp: now + 600, ...claims,
  })}`;
  const signature = sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

/** A JWT signed with Node's own crypto (HS256), as an external identity provider would. */
function mintToken(claims, { secret = HS_SECRET, kid = "e2e" } = {}) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "HS256", typ: "JWT", kid })}.${b64({
    iss: ISSUER, aud: AUDIENCE, sub: "alice", iat: now, nbf: now - 5, exp: now + 600, ...claims,
  })}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

function assertError(body, code) {
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.ok(body.error.message.length > 0);
  assert.ok(body.error.request_id.length > 0);
}

/** The `__Host-eb_session=…` pair of a Set-Cookie header, ready for a Cookie header. */
function sessionCookie(response) {
  const setCookie = response.headers.get("set-cookie") ?? "";
  const match = setCookie.match(/__Host-eb_session=[^;]+/);
  return match?.[0];
}

describe("edge gateway through workerd", { timeout: 300_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let brain, edge, brainUrl, edgeUrl, jwksServer;
  const firstKey = ecKey("idp-key-1");
  const rotatedKey = ecKey("idp-key-2");
  const published = [firstKey.jwk];
  let jwksFetches = 0;
  // While set, the JWKS endpoint answers only once this promise resolves (a slow provider).
  let jwksHold = null;

  before(async () => {
    // The identity provider's JWKS endpoint, on loopback.
    jwksServer = createServer(async (request, response) => {
      jwksFetches += 1;
      if (jwksHold) await jwksHold;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys: published }));
    });
    await new Promise((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const jwksUrl = `http://127.0.0.1:${jwksServer.address().port}/.well-known/jwks.json`;
    const [brainPort, edgePort] = await Promise.all([freePort(), freePort()]);
    brainUrl = `http://127.0.0.1:${brainPort}`;
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    brain = startBrain(brainBin, brainPort, tempDir("edgebrain-gateway-data-"));
    edge = await startEdge("gateway-edge", edgePort, {
      BRAIN_URL: brainUrl,
      AUTH_CONFIG: JSON.stringify({
        issuer: ISSUER, audiences: [AUDIENCE], algorithms: ["HS256", "ES256"],
        jwks_url: { url: jwksUrl, ttl_secs: 3600, min_refresh_interval_secs: 1 },
      }),
      AUTH_HS256_SECRETS: JSON.stringify([{ kid: "e2e", secret: HS_SECRET }]),
      CORS: JSON.stringify({ allowed_origins: [ALLOWED_ORIGIN], allow_credentials: true }),
      RATE_LIMITS: JSON.stringify([
        { name: "default", limit: 1000, window_secs: 60 },
        { name: "burst", limit: 3, window_secs: 600 },
      ]),
      ROUTES: JSON.stringify([
        { path: "/api/v1/diag/echo", methods: ["POST"], auth: { mode: "required", scopes: ["diag:write"] } },
        { path: "/api/v1/diag/echo", methods: ["GET"], cache: { ttl_secs: 2, swr_secs: 600 } },
        { path: "/api/v1/diag/stream", rate_limit: "burst" },
      ]),
    });
    await Promise.all([
      waitHealthy(`${brainUrl}/ready`, brain, 60_000),
      waitHealthy(`${edgeUrl}/health`, edge, 120_000),
    ]);
  });

  after(async () => {
    await Promise.all([stopProcess(edge), stopProcess(brain)]);
    await new Promise((resolve) => jwksServer?.close(resolve) ?? resolve());
  });

  test("keys from the JWKS URL are fetched, and refetched when a token names an unknown kid", async () => {
    const whoami = (token) =>
      fetch(`${edgeUrl}/api/v1/diag/whoami`, { headers: { authorization: `Bearer ${token}` }, signal: TIMEOUT() });
    const first = await whoami(mintEs256(firstKey));
    assert.equal(first.status, 200, await first.clone().text());
    assert.equal((await json(first)).owner, "user:jwks-user");
    assert.ok(jwksFetches >= 1);

    // The provider rotates: a token under the new key makes the edge refetch (at most once a
    // second here; the TTL alone would wait an hour).
    published.push(rotatedKey.jwk);
    const before = jwksFetches;
    let rotated;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      rotated = await whoami(mintEs256(rotatedKey));
      if (rotated.status === 200) break;
      assert.equal(rotated.status, 401, "only a rate-limited refresh may refuse it");
      await rotated.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 200)); // poll interval while the refresh window reopens
    }
    assert.equal(rotated.status, 200);
    assert.equal((await json(rotated)).owner, "user:jwks-user");
    assert.ok(jwksFetches > before, "the JWKS was fetched again");

    // A key the provider never published stays refused.
    const stranger = await whoami(mintEs256(ecKey("not-published")));
    assert.equal(stranger.status, 401);
  });

  test("requests arriving while another request fetches the JWKS wait for that fetch, then get in", async () => {
    const whoami = (token) =>
      fetch(`${edgeUrl}/api/v1/diag/whoami`, { headers: { authorization: `Bearer ${token}` }, signal: TIMEOUT() });
    const newKey = ecKey("idp-key-3");
    published.push(newKey.jwk);
    let release;
    jwksHold = new Promise((resolve) => (release = resolve));
    let first, second;
    try {
      // The first request for the new key starts a fetch the (slow) provider holds. Earlier
      // attempts inside the previous fetch's refresh interval are refused (401) at once.
      const before = jwksFetches;
      const deadline = Date.now() + 10_000;
      while (jwksFetches === before && Date.now() < deadline) {
        first = whoami(mintEs256(newKey));
        const early = await Promise.race([first, new Promise((resolve) => setTimeout(resolve, 300, null))]);
        if (early) {
          assert.equal(early.status, 401, await early.clone().text());
          await early.arrayBuffer();
        }
      }
      assert.ok(jwksFetches > before, "a JWKS fetch was started for the unknown key");
      // A second request now finds the fetch running in another request: it must wait for it
      // on its own (a request awaiting another request's I/O is killed by workerd as hung).
      second = whoami(mintEs256(newKey));
      await new Promise((resolve) => setTimeout(resolve, 300)); // keep the provider slow while the second request waits
    } finally {
      jwksHold = null;
      release();
    }
    for (const answer of [await first, await second]) {
      assert.equal(answer.status, 200, await answer.clone().text());
      assert.equal((await json(answer)).owner, "user:jwks-user");
    }
  });

  test("a new visitor gets a __Host- session cookie that is honoured afterwards", async () => {
    const first = await fetch(`${edgeUrl}/api/v1/diag/whoami`, { signal: TIMEOUT() });
    assert.equal(first.status, 200);
    const setCookie = first.headers.get("set-cookie");
    assert.match(setCookie, /^__Host-eb_session=v1\./);
    for (const attribute of ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"]) {
      assert.ok(setCookie.includes(attribute), `${attribute} in ${setCookie}`);
    }
    const who = await json(first);
    assert.equal(who.user_id, null);
    assert.match(who.session_id, /^[0-9a-f]{32}$/);
    assert.equal(who.owner, `session:${who.session_id}`);

    const again = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { cookie: sessionCookie(first) }, signal: TIMEOUT(),
    });
    assert.equal(again.headers.get("set-cookie"), null, "a valid session is not re-issued");
    assert.equal((await json(again)).session_id, who.session_id);

    const tampered = sessionCookie(first).replace(/.$/, (c) => (c === "0" ? "1" : "0"));
    const replaced = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { cookie: tampered }, signal: TIMEOUT(),
    });
    assert.notEqual((await json(replaced)).session_id, who.session_id, "a tampered token starts a new session");
    assert.ok(sessionCookie(replaced));
  });

  test("non-browser clients keep their session in x-session-id", async () => {
    const first = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { "x-session-id": "new" }, signal: TIMEOUT(),
    });
    const token = first.headers.get("x-session-id");
    assert.match(token, /^v1\./);
    assert.equal(first.headers.get("set-cookie"), null);
    const id = (await json(first)).session_id;
    const again = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { "x-session-id": token }, signal: TIMEOUT(),
    });
    assert.equal((await json(again)).session_id, id);
  });

  test("JWT auth: allowed and denied per route policy", async () => {
    const echo = (headers) =>
      fetch(`${edgeUrl}/api/v1/diag/echo`, {
        method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{\"n\":1}",
        signal: TIMEOUT(),
      });
    const anonymous = await echo({});
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate"), /^Bearer/);
    assertError(await json(anonymous), "unauthorized");

    const noScope = await echo({ authorization: `Bearer ${mintToken({ scope: "profile" })}` });
    assert.equal(noScope.status, 403);
    assert.match(noScope.headers.get("www-authenticate"), /insufficient_scope/);

    const forged = await echo({ authorization: `Bearer ${mintToken({ scope: "diag:write" }, { secret: "x".repeat(40) })}` });
    assert.equal(forged.status, 401);
    const expired = await echo({ authorization: `Bearer ${mintToken({ scope: "diag:write", exp: 1000 })}` });
    assert.equal(expired.status, 401);

    const allowed = await echo({ authorization: `Bearer ${mintToken({ scope: "diag:write" })}` });
    assert.equal(allowed.status, 200);
    const report = await json(allowed);
    assert.deepEqual(report.body, { n: 1 }, "the signed body arrived intact");
    const header = (name) => report.headers.find(([key]) => key === name)?.[1];
    assert.equal(header("x-edgebrain-user"), "alice");
    assert.equal(header("x-edgebrain-scopes"), "diag:write");
    // Bound to the brain it was sent to (its BRAIN_URL's authority).
    const authority = new URL(brainUrl).host;
    assert.match(header("x-edgebrain-signature"), new RegExp(`^t=\\d+,n=[0-9a-f]{32},a=${authority.replace(/\./g, "\\.")},d=[0-9a-f]{64},v1=[0-9a-f]{64}$`));
    assert.equal(header("authorization"), "[redacted]");

    // Optional routes: a valid token identifies the user, an invalid one is refused.
    const who = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { authorization: `Bearer ${mintToken({ scope: "a b" })}` }, signal: TIMEOUT(),
    });
    const identity = await json(who);
    assert.equal(identity.owner, "user:alice");
    assert.deepEqual(identity.scopes, ["a", "b"]);
    const bad = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { authorization: "Bearer not.a.token" }, signal: TIMEOUT(),
    });
    assert.equal(bad.status, 401);
  });

  test("identity headers sent by a client never reach the brain as such", async () => {
    const response = await fetch(`${edgeUrl}/api/v1/diag/whoami`, {
      headers: { "x-edgebrain-user": "mallory", "x-edgebrain-scopes": "admin" }, signal: TIMEOUT(),
    });
    const who = await json(response);
    assert.equal(who.user_id, null);
    assert.deepEqual(who.scopes, []);
  });

  test("vercel.json: a rewrite reaches the brain and a redirect is answered at the edge", async () => {
    const rewritten = await fetch(`${edgeUrl}/v1/diag/whoami`, { signal: TIMEOUT() });
    assert.equal(rewritten.status, 200);
    assert.match((await json(rewritten)).session_id, /^[0-9a-f]{32}$/);
    assert.equal(rewritten.headers.get("x-content-type-options"), "nosniff", "header rule applied");

    const redirected = await fetch(`${edgeUrl}/old-api/v1/diag/echo?x=1`, { redirect: "manual", signal: TIMEOUT() });
    assert.equal(redirected.status, 308);
    assert.equal(redirected.headers.get("location"), "/api/v1/diag/echo?x=1");
  });

  test("cache: MISS, then HIT, then STALE once the TTL passes", async () => {
    const url = `${edgeUrl}/api/v1/diag/echo?cache-test=${randomBytes(8).toString("hex")}&utm_source=e2e`;
    const get = () => fetch(url, { signal: TIMEOUT() });
    const first = await get();
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-edge-cache"), "MISS");
    const firstId = (await json(first)).request_id;

    // The store happens in the background (waitUntil): poll until the entry is there.
    let hit;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      hit = await get();
      if (hit.headers.get("x-edge-cache") === "HIT") break;
      await hit.arrayBuffer();
    }
    assert.equal(hit.headers.get("x-edge-cache"), "HIT");
    assert.equal((await json(hit)).request_id, firstId, "served from the cache, not the brain");

    // TTL is 2 s, stale-while-revalidate 600 s: once the TTL passes the copy is served STALE.
    let stale;
    const staleDeadline = Date.now() + 15_000;
    while (Date.now() < staleDeadline) {
      stale = await get();
      if (stale.headers.get("x-edge-cache") === "STALE") break;
      await stale.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 250)); // poll interval while the TTL runs out
    }
    assert.equal(stale.headers.get("x-edge-cache"), "STALE");
    await stale.arrayBuffer();

    const uncached = await fetch(`${edgeUrl}/api/v1/diag/whoami`, { signal: TIMEOUT() });
    assert.equal(uncached.headers.get("x-edge-cache"), "BYPASS");
  });

  test("rate limit: 429 with RateLimit headers after the configured burst", async () => {
    // The platform's client address (wrangler dev keeps one a test sets): a visitor without an
    // established session counts against its network.
    const network = { "cf-connecting-ip": "198.51.100.50" };
    const first = await fetch(`${edgeUrl}/api/v1/diag/stream?events=1&interval_ms=0`, { headers: network, signal: TIMEOUT() });
    const cookie = sessionCookie(first);
    assert.equal(first.status, 200);
    assert.match(first.headers.get("ratelimit-policy"), /^"burst";q=3;w=600$/);
    assert.match(first.headers.get("ratelimit"), /^"burst";r=2;t=\d+$/);
    await first.arrayBuffer();
    // The session it was given, presented back, has a bucket of its own.
    for (const remaining of [2, 1, 0]) {
      const ok = await fetch(`${edgeUrl}/api/v1/diag/stream?events=1&interval_ms=0`, {
        headers: { ...network, cookie }, signal: TIMEOUT(),
      });
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get("ratelimit"), new RegExp(`^"burst";r=${remaining};t=\\d+$`));
      await ok.arrayBuffer();
    }
    const limited = await fetch(`${edgeUrl}/api/v1/diag/stream?events=1&interval_ms=0`, {
      headers: { ...network, cookie }, signal: TIMEOUT(),
    });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    assert.match(limited.headers.get("ratelimit"), /^"burst";r=0;t=\d+$/);
    assertError(await json(limited), "rate_limited");

    // Another network has a bucket of its own.
    const other = await fetch(`${edgeUrl}/api/v1/diag/stream?events=1&interval_ms=0`, {
      headers: { "cf-connecting-ip": "198.51.100.51" }, signal: TIMEOUT(),
    });
    assert.equal(other.status, 200);
    assert.match(other.headers.get("ratelimit"), /^"burst";r=2;t=\d+$/);
    await other.arrayBuffer();
  });

  test("the brain refuses direct calls without, or with a forged, edge signature", async () => {
    const unsigned = await fetch(`${brainUrl}/api/v1/diag/whoami`, {
      headers: { "x-edgebrain-user": "alice" }, signal: TIMEOUT(),
    });
    assert.equal(unsigned.status, 401);
    assertError(await json(unsigned), "unauthorized");

    const t = Math.floor(Date.now() / 1000);
    const n = randomBytes(16).toString("hex");
    const d = createHmac("sha256", "").digest("hex").replace(/./g, "0");
    const authority = new URL(brainUrl).host;
    const canonical = ["edgebrain-signature-v3", t, n, "GET", authority, "/api/v1/diag/whoami", d, "alice", "", "", ""].join("\n");
    const forgedSig = createHmac("sha256", "not-the-edge-secret-0123456789abcdef").update(canonical).digest("hex");
    const forged = await fetch(`${brainUrl}/api/v1/diag/whoami`, {
      headers: { "x-edgebrain-user": "alice", "x-edgebrain-signature": `t=${t},n=${n},a=${authority},d=${d},v1=${forgedSig}` },
      signal: TIMEOUT(),
    });
    assert.equal(forged.status, 401);

    // The same request signed with the real secret passes — the refusal above is the signature's.
    const emptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // v3 canonical form: t, n, method, the brain's authority, path, d, then user, session,
    // scopes, network (shared_types::signature).
    const signFor = (brain) => {
      const good = ["edgebrain-signature-v3", t, n, "GET", brain, "/api/v1/diag/whoami", emptyDigest, "alice", "", "", ""].join("\n");
      const sig = createHmac("sha256", EDGE_SIGNING_SECRET).update(good).digest("hex");
      return `t=${t},n=${n},a=${brain},d=${emptyDigest},v1=${sig}`;
    };
    // Signed with the real secret but for another brain: refused (BRAIN_EDGE_AUTHORITY).
    const otherBrain = await fetch(`${brainUrl}/api/v1/diag/whoami`, {
      headers: { "x-edgebrain-user": "alice", "x-edgebrain-signature": signFor("brain-b.internal:8080") },
      signal: TIMEOUT(),
    });
    assert.equal(otherBrain.status, 401);
    assertError(await json(otherBrain), "unauthorized");
    const signed = await fetch(`${brainUrl}/api/v1/diag/whoami`, {
      headers: { "x-edgebrain-user": "alice", "x-edgebrain-signature": signFor(authority) },
      signal: TIMEOUT(),
    });
    assert.equal(signed.status, 200);
    assert.equal((await json(signed)).owner, "user:alice");
  });

  test("CORS: preflights are answered at the edge, for allowlisted origins only", async () => {
    const preflight = (origin) =>
      fetch(`${edgeUrl}/api/v1/diag/echo`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
        signal: TIMEOUT(),
      });
    const allowed = await preflight(ALLOWED_ORIGIN);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
    assert.equal(allowed.headers.get("access-control-allow-credentials"), "true");
    const refused = await preflight("https://evil.e2e.invalid");
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    assert.ok(!brain.output.includes("method=OPTIONS"), "no preflight reached the brain");

    const actual = await fetch(`${edgeUrl}/api/v1/diag/whoami`, { headers: { origin: ALLOWED_ORIGIN }, signal: TIMEOUT() });
    assert.equal(actual.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
    assert.match(actual.headers.get("access-control-expose-headers"), /x-request-id/i);
    const foreign = await fetch(`${edgeUrl}/api/v1/diag/whoami`, { headers: { origin: "https://evil.e2e.invalid" }, signal: TIMEOUT() });
    assert.equal(foreign.headers.get("access-control-allow-origin"), null);
  });

  test("a brain stream that breaks off mid-way ends in an explicit error event", async () => {
    const response = await fetch(`${edgeUrl}/api/v1/diag/stream?events=5&interval_ms=50&break_after=2`, {
      headers: { "x-request-id": "broken-stream-1", "cf-connecting-ip": "198.51.100.52" }, signal: TIMEOUT(),
    });
    assert.equal(response.status, 200);
    const events = [];
    await readSse(response, (event) => events.push(event));
    assert.deepEqual(events.map((e) => e.event), ["tick", "tick", "error"]);
    const error = JSON.parse(events[2].data);
    assert.equal(error.type, "error");
    assert.equal(error.code, "bad_gateway");
    assert.equal(error.request_id, "broken-stream-1");

    // A stream that ends normally gets no error event.
    const whole = await fetch(`${edgeUrl}/api/v1/diag/stream?events=2&interval_ms=10`, {
      headers: { "cf-connecting-ip": "198.51.100.53" }, signal: TIMEOUT(),
    });
    const complete = [];
    await readSse(whole, (event) => complete.push(event));
    assert.deepEqual(complete.map((e) => e.event), ["tick", "tick"]);
  });
});
