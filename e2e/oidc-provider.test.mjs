// End-to-end: the OpenID Connect provider the edge's sign-in tests use (scripts/oidc-provider.mjs,
// the pinned npm oidc-provider on loopback): discovery, authorization code flow with PKCE S256,
// state and nonce, the ID token's claims and signature, operator roles, and refusals.
// Needs nothing but Node 22 (scripts/test sets EDGEBRAIN_NODE_DIR; without it, this node runs it).
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import { json, signInAtProvider, startOidcProvider, stopProcess } from "./support.mjs";

const REQUEST_TIMEOUT = () => AbortSignal.timeout(10_000);
const CLIENT_ID = "edgebrain-test";
const CLIENT_SECRET = "edgebrain-test-secret-0123456789abcdef";
const REDIRECT_URI = "http://127.0.0.1:9/auth/callback";

const base64url = (bytes) => Buffer.from(bytes).toString("base64url");
const decodeSegment = (segment) => JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));

/** Verifies a compact JWS against a JWKS with node:crypto; returns its payload. */
function verifyJwt(jwt, jwks) {
  const [headerSegment, payloadSegment, signatureSegment] = jwt.split(".");
  const header = decodeSegment(headerSegment);
  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  assert.ok(jwk, `no key ${header.kid} in the JWKS`);
  assert.equal(jwk.d, undefined, "the JWKS must not publish private keys");
  const algorithms = {
    RS256: { hash: "sha256", options: {} },
    ES256: { hash: "sha256", options: { dsaEncoding: "ieee-p1363" } },
  };
  const algorithm = algorithms[header.alg];
  assert.ok(algorithm, `unexpected alg ${header.alg}`);
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const valid = verify(
    algorithm.hash,
    Buffer.from(`${headerSegment}.${payloadSegment}`),
    { key, ...algorithm.options },
    Buffer.from(signatureSegment, "base64url"),
  );
  assert.ok(valid, "the ID token's signature does not verify against the JWKS");
  return { header, payload: decodeSegment(payloadSegment) };
}

describe("the local OpenID Connect provider", { timeout: 60_000 }, () => {
  let provider, issuer, discovery, jwks;

  before(async () => {
    ({ issuer, proc: provider } = await startOidcProvider({
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI] }],
      access_token_ttl_secs: 300,
      id_token_ttl_secs: 300,
    }));
    discovery = await json(await fetch(`${issuer}/.well-known/openid-configuration`, { signal: REQUEST_TIMEOUT() }));
    jwks = await json(await fetch(discovery.jwks_uri, { signal: REQUEST_TIMEOUT() }));
  });

  after(async () => {
    await stopProcess(provider);
  });

  /** An authorization request with PKCE S256, state and nonce; `challenge: false` leaves PKCE out. */
  function authorizationRequest({ challenge = true } = {}) {
    const verifier = base64url(randomBytes(32));
    const state = base64url(randomBytes(16));
    const nonce = base64url(randomBytes(16));
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope: "openid profile email",
      state,
      nonce,
      ...(challenge
        ? { code_challenge: base64url(createHash("sha256").update(verifier).digest()), code_challenge_method: "S256" }
        : {}),
    }).toString();
    return { url: url.href, verifier, state, nonce };
  }

  /** The token endpoint's answer for `code` (client_secret_basic, as the client is registered). */
  function exchange(code, verifier) {
    const basic = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString("base64");
    return fetch(discovery.token_endpoint, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
      signal: REQUEST_TIMEOUT(),
    });
  }

  /** Signs in as `login`; returns the callback's parameters and the request. */
  async function signIn(login) {
    const request = authorizationRequest();
    const callback = new URL(await signInAtProvider(request.url, login));
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
    assert.equal(callback.searchParams.get("error"), null, callback.href);
    assert.equal(callback.searchParams.get("state"), request.state);
    assert.equal(callback.searchParams.get("iss"), issuer);
    const code = callback.searchParams.get("code");
    assert.ok(code, `no code in ${callback.href}`);
    return { ...request, code };
  }

  test("discovery: loopback issuer, PKCE S256, the scopes, signed ID tokens, a JWKS of public keys", () => {
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(discovery.issuer, issuer);
    assert.deepEqual(discovery.code_challenge_methods_supported, ["S256"]);
    for (const scope of ["openid", "profile", "email"]) assert.ok(discovery.scopes_supported.includes(scope), scope);
    assert.ok(discovery.id_token_signing_alg_values_supported.includes("RS256"));
    assert.deepEqual(discovery.response_types_supported, ["code"]);
    assert.ok(jwks.keys.length >= 1);
    for (const key of jwks.keys) assert.equal(key.d, undefined);
  });

  test("discovery requests are counted, with the time of the last one", async () => {
    const requests = async () =>
      json(await fetch(`${issuer}/test/discovery-requests`, { signal: REQUEST_TIMEOUT() }));
    const before = await requests();
    assert.ok(before.count >= 1, "before() asked for the document");
    const askedAt = Date.now();
    await json(await fetch(`${issuer}/.well-known/openid-configuration?x=1`, { signal: REQUEST_TIMEOUT() }));
    const after = await requests();
    assert.equal(after.count, before.count + 1);
    assert.ok(after.last_ms >= askedAt && after.last_ms <= Date.now(), JSON.stringify(after));
    await fetch(discovery.jwks_uri, { signal: REQUEST_TIMEOUT() });
    assert.equal((await requests()).count, after.count, "only the discovery document counts");
  });

  test("an operator signs in: code flow with PKCE, an ID token with nonce, name, email and the operator role", async () => {
    const { code, verifier, nonce } = await signIn("operator-olga");
    const response = await exchange(code, verifier);
    const tokens = await json(response);
    assert.equal(response.status, 200, JSON.stringify(tokens));
    assert.equal(tokens.token_type, "Bearer");
    assert.ok(tokens.access_token);
    assert.equal(tokens.refresh_token, undefined, "the edge refreshes its own sessions; the provider issues none");

    const { header, payload } = verifyJwt(tokens.id_token, jwks);
    assert.equal(header.alg, "RS256");
    assert.equal(payload.iss, issuer);
    assert.equal(payload.sub, "operator-olga");
    assert.equal(payload.aud, CLIENT_ID);
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.name, "User operator-olga");
    assert.equal(payload.email, "operator-olga@example.test");
    assert.ok(Array.isArray(payload.roles) && payload.roles.includes("edgebrain:operator"), JSON.stringify(payload));
    const now = Math.floor(Date.now() / 1000);
    assert.ok(payload.exp > now && payload.exp <= now + 300 + 5, `exp ${payload.exp}, now ${now}`);

    // The code is single-use.
    const replay = await exchange(code, verifier);
    assert.equal(replay.status, 400);
    assert.equal((await json(replay)).error, "invalid_grant");
  });

  test("anyone else signs in without the operator role", async () => {
    const { code, verifier } = await signIn("alice");
    const response = await exchange(code, verifier);
    const tokens = await json(response);
    assert.equal(response.status, 200, JSON.stringify(tokens));
    const { payload } = verifyJwt(tokens.id_token, jwks);
    assert.equal(payload.sub, "alice");
    assert.equal(payload.email, "alice@example.test");
    assert.ok(!payload.roles?.includes("edgebrain:operator"), JSON.stringify(payload));
  });

  test("a wrong code_verifier is refused", async () => {
    const { code } = await signIn("operator-olga");
    const response = await exchange(code, base64url(randomBytes(32)));
    assert.equal(response.status, 400);
    assert.equal((await json(response)).error, "invalid_grant");
  });

  test("an authorization request without PKCE is refused", async () => {
    const request = authorizationRequest({ challenge: false });
    const callback = new URL(await signInAtProvider(request.url, "operator-olga"));
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
    assert.equal(callback.searchParams.get("error"), "invalid_request");
    assert.equal(callback.searchParams.get("code"), null);
    assert.equal(callback.searchParams.get("state"), request.state);
  });
});
