// End-to-end: sign-in at the edge (issue 19) — the edge in workerd as the relying party of a
// real OpenID provider (scripts/oidc-provider.mjs, the pinned npm oidc-provider, on loopback)
// with the brain (default diagnostics: operators only) behind it. A visitor works anonymously,
// signs in, finds that work under the account, keeps working past the access lifetime through
// a refresh, signs out; each hostile step is refused in the error shape. Driven with fetch and
// a cookie jar (the browser's part is redirects and cookies).
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CookieJar, ROOT, freePort, json, launchChromium, newWatchedPage, requireEnv, signInAtProvider, startBrain, startEdge, startOidcProvider,
  startWorkerd, stopProcess, tempDir, waitHealthy,
} from "./support.mjs";
import { ANSWER, scriptedLlmConfig, startScriptedLlm } from "./scripted-llm.mjs";

const REQUEST_TIMEOUT = () => AbortSignal.timeout(15_000);
const CLIENT_ID = "edgebrain-e2e";
const CLIENT_SECRET = "edgebrain-e2e-client-secret-0123456789";
/** Short enough to pass within the test; the brain keeps the refresh state. */
const ACCESS_TTL_SECS = 2;
/** The first suite's edge keeps the discovery document this long: stale after every test. */
const DISCOVERY_TTL_SECS = 1;
/** The edge's floor between discovery fetches, whatever the TTL (MIN_REFETCH_SECS in
 * edge/src/core/signin/discovery.rs). */
const MIN_REFETCH_SECS = 30;

/** The edge's variables for sign-in at `provider`, with the brain at `brainPort`. */
function signinVars(provider, brainPort) {
  return {
    BRAIN_URL: `http://127.0.0.1:${brainPort}`,
    OIDC_ISSUER: provider.issuer,
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_CLIENT_SECRET: CLIENT_SECRET,
    // The provider puts `edgebrain:operator` in the `roles` claim.
    OIDC_SCOPE_CLAIMS: "roles",
    SIGNIN_ACCESS_TTL_SECS: String(ACCESS_TTL_SECS),
  };
}

describe("sign-in at the edge against a real OpenID provider", () => {
  let provider, brain, edge, edgeUrl;
  const jar = new CookieJar();

  /** A request from the app's own pages (same origin), with the jar's cookies. */
  async function call(path, { method = "GET", body, raw, headers = {}, cookies = jar } = {}) {
    const response = await fetch(`${edgeUrl}${path}`, {
      method,
      redirect: "manual",
      headers: {
        ...(cookies.header() ? { cookie: cookies.header() } : {}),
        ...(method === "GET" ? {} : { "sec-fetch-site": "same-origin" }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      signal: REQUEST_TIMEOUT(),
    });
    cookies.take(response);
    return response;
  }

  /** The whole login: /auth/login → the provider's pages → /auth/callback → back. */
  async function signIn(login, returnTo = "/threads", cookies = jar) {
    const start = await call(`/auth/login?return_to=${encodeURIComponent(returnTo)}`, { cookies });
    assert.equal(start.status, 302);
    const callback = await signInAtProvider(start.headers.get("location"), login);
    const back = await call(new URL(callback).pathname + new URL(callback).search, { cookies });
    return back;
  }
  /** The anonymous session olga signed in from. */
  let visitorSession;

  before(async () => {
    const brainBin = requireEnv("BRAIN_BIN");
    const [brainPort, edgePort] = await Promise.all([freePort(), freePort()]);
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    provider = await startOidcProvider({
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${edgeUrl}/auth/callback`] }],
    });
    // The default diagnostics setting: operators only. No reuse leeway, so that presenting a
    // rotated refresh token again revokes its sign-in at once (the 30 s default is the brain's
    // own tests' business).
    brain = startBrain(brainBin, brainPort, tempDir("edgebrain-signin-brain-"), {
      BRAIN_DIAG: null,
      BRAIN_REFRESH_REUSE_LEEWAY_MS: "0",
    });
    edge = startWorkerd("signin-edge", edgePort, {
      ...signinVars(provider, brainPort),
      OIDC_DISCOVERY_TTL_SECS: String(DISCOVERY_TTL_SECS),
    });
    await Promise.all([
      waitHealthy(`http://127.0.0.1:${brainPort}/ready`, brain, 60_000),
      waitHealthy(`${edgeUrl}/health`, edge, 60_000),
    ]);
  });

  after(async () => {
    await Promise.all([stopProcess(edge), stopProcess(brain), stopProcess(provider?.proc)]);
  });

  test("a cold edge: concurrent first sign-ins all start, and all finish", async () => {
    // The isolate has neither the provider's discovery document nor its keys yet: the requests
    // that do not fetch them wait for the one that does.
    const jars = [1, 2, 3, 4].map(() => new CookieJar());
    const starts = await Promise.all(jars.map((cookies) => call("/auth/login", { cookies })));
    const bodies = await Promise.all(starts.map(async (r) => (r.status === 302 ? "" : await r.text())));
    assert.deepEqual(starts.map((r) => r.status), [302, 302, 302, 302], bodies.join(" | "));
    const callbacks = await Promise.all(
      starts.map((r, i) => signInAtProvider(r.headers.get("location"), `early-${i}`)),
    );
    const backs = await Promise.all(
      callbacks.map((href, i) => call(new URL(href).pathname + new URL(href).search, { cookies: jars[i] })),
    );
    assert.deepEqual(backs.map((r) => r.status), [302, 302, 302, 302]);
    const users = await Promise.all(jars.map(async (cookies) => (await json(await call("/api/v1/session", { cookies }))).user_id));
    assert.deepEqual(users, ["early-0", "early-1", "early-2", "early-3"]);
  });

  test("a visitor works anonymously, signs in, and finds that work under the account", async () => {
    const me = await json(await call("/auth/me"));
    assert.deepEqual(me, { signin_available: true, user: null });
    const created = await call("/api/v1/threads", { method: "POST", body: { title: "before signing in" } });
    assert.equal(created.status, 201);
    assert.equal((await call("/api/v1/diag/whoami")).status, 403, "visitors are no operators");
    visitorSession = jar.cookies.get("__Host-eb_session");
    assert.ok(visitorSession);

    const back = await signIn("operator-olga", "/threads?x=1");
    assert.equal(back.status, 302);
    assert.equal(back.headers.get("location"), "/threads?x=1");
    assert.ok(jar.cookies.has("__Host-eb_access") && jar.cookies.has("__Host-eb_refresh"));
    assert.ok(!jar.cookies.has("__Host-eb_login"), "the login state is cleared");

    const signedIn = await json(await call("/auth/me"));
    assert.equal(signedIn.user.user_id, "operator-olga");
    assert.equal(signedIn.user.name, "User operator-olga");
    assert.ok(signedIn.user.scopes.includes("edgebrain:operator"));
    const session = await json(await call("/api/v1/session"));
    assert.equal(session.user_id, "operator-olga");
    assert.equal(session.owner, "user:operator-olga");
    const threads = await json(await call("/api/v1/threads"));
    assert.deepEqual(threads.threads.map((t) => t.title), ["before signing in"]);
    assert.equal((await call("/api/v1/diag/whoami")).status, 200, "the provider's operator role reaches the brain");
  });

  test("past the access lifetime the refresh token renews the sign-in, rotating", async () => {
    const refreshBefore = jar.cookies.get("__Host-eb_refresh");
    await sleep(ACCESS_TTL_SECS * 1000 + 500); // the access cookie's lifetime, by design
    const response = await call("/api/v1/session");
    assert.equal(response.status, 200);
    assert.equal((await json(response)).user_id, "operator-olga");
    const refreshAfter = jar.cookies.get("__Host-eb_refresh");
    assert.ok(refreshAfter && refreshAfter !== refreshBefore, "a refresh issues a new refresh token");
    // Writes keep working, from this site; from another site the cookie does not count.
    const write = await call("/api/v1/threads", { method: "POST", body: { title: "after a refresh" } });
    assert.equal(write.status, 201);
    const crossSite = await call("/api/v1/threads", {
      method: "POST", body: { title: "forged" }, headers: { "sec-fetch-site": "cross-site" },
    });
    assert.equal(crossSite.status, 403);
    assert.equal((await json(crossSite)).error.code, "forbidden");
  });

  test("hostile sign-in steps are refused in the error shape, never 500", async () => {
    const stranger = new CookieJar();
    for (const [path, status] of [
      ["/auth/callback?code=abc&state=forged", 400], // no login started in this browser
      ["/auth/callback?error=access_denied&state=x", 401],
      ["/auth/unknown", 404],
    ]) {
      const response = await call(path, { cookies: stranger });
      assert.equal(response.status, status, path);
      const body = await json(response);
      assert.ok(body.error?.code && body.error.request_id, path);
    }
    // A login started in one browser cannot be finished with another's state.
    const started = await call("/auth/login", { cookies: stranger });
    const state = new URL(started.headers.get("location")).searchParams.get("state");
    const replayed = await call(`/auth/callback?code=abc&state=${state}`, { cookies: new CookieJar() });
    assert.equal(replayed.status, 400);
    // return_to never leaves this origin.
    const other = new CookieJar();
    const login = await call("/auth/login?return_to=//evil.example/x", { cookies: other });
    const callback = await signInAtProvider(login.headers.get("location"), "alice");
    const back = await call(new URL(callback).pathname + new URL(callback).search, { cookies: other });
    assert.equal(back.headers.get("location"), "/");
    // A plain user is no operator; a forged access cookie is nobody.
    assert.equal((await call("/api/v1/diag/whoami", { cookies: other })).status, 403);
    const forged = new CookieJar();
    forged.cookies.set("__Host-eb_access", other.cookies.get("__Host-eb_access").replace(/.$/, (c) => (c === "0" ? "1" : "0")));
    assert.equal((await json(await call("/api/v1/session", { cookies: forged }))).user_id, null);
    // Signing out from another site is refused.
    const crossSite = await call("/auth/logout", { method: "POST", cookies: other, headers: { "sec-fetch-site": "cross-site" } });
    assert.equal(crossSite.status, 403);
  });

  test("publishing and pinning are for operators; visitors get 403", async () => {
    const csv = "region,units\nnorth,3\nsouth,4\n";
    const visitor = new CookieJar();
    const publish = (cookies) => call("/api/v1/datasets?name=published&scope=public", {
      method: "POST", raw: csv, headers: { "content-type": "text/csv" }, cookies,
    });
    const refused = await publish(visitor);
    assert.equal(refused.status, 403);
    assert.equal((await json(refused)).error.code, "forbidden");
    const published = await publish(jar);
    assert.equal(published.status, 201);
    const { id } = await json(published);
    assert.equal((await call(`/api/v1/datasets/${id}/pin`, { method: "PUT", cookies: visitor })).status, 403);
    assert.ok([200, 204].includes((await call(`/api/v1/datasets/${id}/pin`, { method: "PUT" })).status));
  });

  test("a replayed authorization code is refused by the provider; no sign-in comes of it", async () => {
    const browser = new CookieJar();
    const start = await call("/auth/login", { cookies: browser });
    const loginCookie = browser.cookies.get("__Host-eb_login");
    const callback = await signInAtProvider(start.headers.get("location"), "carol");
    const path = new URL(callback).pathname + new URL(callback).search;
    assert.equal((await call(path, { cookies: browser })).status, 302);
    // The same answer again, with the login state restored (a captured request replayed).
    const attacker = new CookieJar();
    attacker.cookies.set("__Host-eb_login", loginCookie);
    const replayed = await call(path, { cookies: attacker });
    assert.equal(replayed.status, 401);
    assert.equal((await json(replayed)).error.code, "unauthorized");
    assert.ok(!attacker.cookies.has("__Host-eb_access"));
  });

  test("a refresh token used twice ends its whole sign-in", async () => {
    const rita = new CookieJar();
    assert.equal((await signIn("rita", "/", rita)).status, 302);
    const first = rita.cookies.get("__Host-eb_refresh");
    // The access credential gone (expired), the next request renews: a new refresh token.
    rita.cookies.delete("__Host-eb_access");
    assert.equal((await json(await call("/api/v1/session", { cookies: rita }))).user_id, "rita");
    assert.notEqual(rita.cookies.get("__Host-eb_refresh"), first);
    // The first token again (stolen and replayed): refused, the caller is anonymous…
    const thief = new CookieJar();
    thief.cookies.set("__Host-eb_refresh", first);
    assert.equal((await json(await call("/api/v1/session", { cookies: thief }))).user_id, null);
    // …and the family is dead: rita's current token is refused too.
    rita.cookies.delete("__Host-eb_access");
    assert.equal((await json(await call("/api/v1/session", { cookies: rita }))).user_id, null);
    assert.ok(!rita.cookies.has("__Host-eb_refresh"), "the dead sign-in's cookies are cleared");
  });

  test("signing in with another user's session cookie takes nothing of theirs", async () => {
    // Mallory got hold of the session cookie olga visited with (olga's work moved to her
    // account when she signed in from it): signing in with it claims nothing.
    const mallory = new CookieJar();
    mallory.cookies.set("__Host-eb_session", visitorSession);
    assert.equal((await signIn("mallory", "/", mallory)).status, 302);
    assert.equal((await json(await call("/api/v1/session", { cookies: mallory }))).user_id, "mallory");
    assert.deepEqual((await json(await call("/api/v1/threads", { cookies: mallory }))).threads, []);
  });

  test("signing out revokes the sign-in at the brain: the old refresh token is worthless", async () => {
    const stolen = new CookieJar();
    stolen.cookies.set("__Host-eb_refresh", jar.cookies.get("__Host-eb_refresh"));
    const out = await call("/auth/logout", { method: "POST" });
    assert.equal(out.status, 204);
    assert.equal(jar.cookies.size, 0, "every cookie cleared, the session too");
    assert.deepEqual(await json(await call("/auth/me")), { signin_available: true, user: null });
    // The refresh token kept from before: refused by the brain, so the request is anonymous
    // and its cookie is cleared.
    const replay = await call("/api/v1/session", { cookies: stolen });
    assert.equal(replay.status, 200);
    assert.equal((await json(replay)).user_id, null);
    assert.ok(!stolen.cookies.has("__Host-eb_refresh"));
    // And the anonymous session after signing out is a new one: the account's threads stay there.
    assert.deepEqual((await json(await call("/api/v1/threads"))).threads, []);
  });

  test("a stale discovery document is refetched by the next sign-in step, then not within 30 s", async () => {
    const discoveryRequests = async () =>
      json(await fetch(`${provider.issuer}/test/discovery-requests`, { signal: REQUEST_TIMEOUT() }));
    const before = await discoveryRequests();
    assert.ok(before.count >= 1, "the earlier sign-ins fetched the document");
    // Past its 1 s TTL the document is due again once the edge's floor between fetches has
    // passed since the last one the provider saw (the edge counts whole seconds from a moment
    // before that; 0.5 s more because workerd's clock moves only with its I/O). Mostly the
    // tests above took that long already.
    const dueInMs = before.last_ms + MIN_REFETCH_SECS * 1000 + 500 - Date.now();
    if (dueInMs > 0) await sleep(dueInMs);
    const login = await call("/auth/login", { cookies: new CookieJar() });
    assert.equal(login.status, 302);
    const refetched = await discoveryRequests();
    assert.equal(refetched.count, before.count + 1, "the sign-in step refetched the document before it answered");
    // Stale again a second later, but within the floor: a whole sign-in (login and callback)
    // on the cached document.
    await sleep(DISCOVERY_TTL_SECS * 1000 + 100);
    const larry = new CookieJar();
    assert.equal((await signIn("late-larry", "/", larry)).status, 302);
    assert.equal((await json(await call("/api/v1/session", { cookies: larry }))).user_id, "late-larry");
    assert.equal((await discoveryRequests()).count, refetched.count, "no second fetch within the floor");
  });
});

describe("signing in through the web app in Chromium", { timeout: 180_000 }, () => {
  const QUESTION = "How many units did each store sell?";
  let provider, llm, brain, edge, edgeUrl, browser, page;
  const consoleErrors = [];

  before(async () => {
    const brainBin = requireEnv("BRAIN_BIN");
    llm = await startScriptedLlm();
    const dataDir = tempDir("edgebrain-signin-web-");
    const configFile = join(dataDir, "llm.toml");
    writeFileSync(configFile, scriptedLlmConfig(llm.url, "scripted-agent"));
    const [brainPort, edgePort] = await Promise.all([freePort(), freePort()]);
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    provider = await startOidcProvider({
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${edgeUrl}/auth/callback`] }],
    });
    brain = startBrain(brainBin, brainPort, dataDir, { BRAIN_LLM_CONFIG: configFile, BRAIN_SAMPLE_TRANSACTIONS: "500", BRAIN_DIAG: null });
    // wrangler dev: the edge with the web app's static assets, as deployed on Cloudflare.
    edge = await startEdge("signin-web-edge", edgePort, signinVars(provider, brainPort));
    await Promise.all([
      waitHealthy(`http://127.0.0.1:${brainPort}/ready`, brain, 60_000),
      waitHealthy(`${edgeUrl}/health`, edge, 120_000),
    ]);
    browser = await launchChromium();
    // The app's pages must log no error; the provider's own pages (which ask the internet for
    // fonts and a favicon) are not ours to judge.
    page = await newWatchedPage(browser, edgeUrl, consoleErrors);
  });

  after(async () => {
    if (page && !page.isClosed()) {
      mkdirSync(join(ROOT, "e2e/artifacts"), { recursive: true });
      await page.screenshot({ path: join(ROOT, "e2e/artifacts/signin-last.png") }).catch(() => {});
    }
    await browser?.close();
    await Promise.all([stopProcess(edge), stopProcess(brain), stopProcess(provider?.proc)]);
    await llm?.close();
  });

  const identity = (text) => page.getByTestId("identity").filter({ hasText: text }).waitFor();

  test("chat anonymously, sign in at the provider, find the thread, reload, refresh, sign out", async () => {
    await page.goto(edgeUrl);
    await identity("anonymous (edge session)");
    await page.getByRole("button", { name: "New conversation" }).first().click();
    await page.getByLabel("Message", { exact: true }).fill(QUESTION);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.getByTestId("message-assistant").getByTestId("message-text").filter({ hasText: ANSWER }).waitFor({ timeout: 60_000 });
    await page.getByTestId("thread").filter({ hasText: QUESTION }).waitFor();

    // The provider's own pages: any login, then consent.
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.locator('input[name="login"]').fill("operator-olga");
    await page.locator('input[name="password"]').fill("any password");
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').click(); // consent: "Continue"
    await page.waitForURL((url) => url.origin === edgeUrl);
    await identity("signed in as User operator-olga");
    await page.getByTestId("thread").filter({ hasText: QUESTION }).waitFor();
    assert.equal(await page.getByRole("link", { name: "Sign in" }).count(), 0);

    await page.reload();
    await identity("signed in as User operator-olga");

    // Past the access lifetime the next calls renew the sign-in on the way.
    await sleep(ACCESS_TTL_SECS * 1000 + 500); // the access cookie's lifetime, by design
    await page.reload();
    await identity("signed in as User operator-olga");
    await page.getByTestId("thread").filter({ hasText: QUESTION }).waitFor();

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("link", { name: "Sign in" }).waitFor();
    await identity("anonymous (edge session)");
    assert.equal(await page.getByTestId("thread").filter({ hasText: QUESTION }).count(), 0, "the account's threads stay with it");
    assert.deepEqual(consoleErrors, []);
  });
});
