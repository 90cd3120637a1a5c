// A fleet of three brains on one PostgreSQL database and one S3-compatible object store (moto,
// from PyPI, on 127.0.0.1), behind the edge in the Workers runtime (wrangler dev with the
// repository's wrangler.toml, BRAIN_URLS naming all three), with the scripted model server.
// Issue 18's acceptance: tenants spread and stay on their brain; a dataset written through one
// brain is read through another; a reconnect to a run on one brain is served by another; a
// signature captured on its way to one brain is refused by the others; `kill -9` of a brain
// under load; a rolling restart of all three under a steady chat + query load.
//
// Two more edges, each configured with one brain only (same secrets, so the same sessions),
// send a tenant's requests to a brain that is not its own. Brain 3 sits behind a recording
// proxy (the fleet edge knows it by the proxy's address), which captures signed requests.
// Run by scripts/test (BRAIN_BIN set).
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  freePort, json, readSse, requireEnv, startBrain, startEdge, startS3, startWorkerd, stopProcess, tempDir, waitHealthy,
} from "./support.mjs";
import { SLOW_ANSWER, SLOW_QUESTION, quickAnswer, scriptedLlmConfig, startScriptedLlm } from "./scripted-llm.mjs";

const PG_ADMIN_URL = process.env.EDGEBRAIN_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const BRAIN_HEADER = "x-edgebrain-brain";
// Short leases, so a killed brain's run is ended within the test (production: 15 s / 5 s).
const LEASE_MS = 3_000;
const LEASE_RENEW_MS = 1_000;
// The load below is many requests a minute from one network; the limits are not this test's subject.
const RATE_LIMITS = JSON.stringify([
  { name: "default", limit: 100_000, window_secs: 60, network_limit: 1_000_000 },
  { name: "chat", limit: 100_000, window_secs: 60, network_limit: 1_000_000 },
]);
const QUERY = "SELECT store_id, COUNT(*) AS n FROM transactions GROUP BY store_id ORDER BY store_id";

/**
 * A proxy in front of one brain that records every request it forwards (method, path, headers,
 * body). When the brain is down it breaks the client's connection, as a dead brain would.
 */
function startRecordingProxy(port, targetPort) {
  const recorded = [];
  const server = createServer((incoming, outgoing) => {
    const chunks = [];
    incoming.on("data", (chunk) => chunks.push(chunk));
    incoming.on("end", () => {
      const body = Buffer.concat(chunks);
      recorded.push({ method: incoming.method, path: incoming.url, headers: { ...incoming.headers }, body });
      const upstream = httpRequest(
        { host: "127.0.0.1", port: targetPort, method: incoming.method, path: incoming.url, headers: incoming.headers },
        (answer) => {
          outgoing.writeHead(answer.statusCode, answer.headers);
          answer.pipe(outgoing);
        },
      );
      upstream.on("error", () => outgoing.socket?.destroy());
      upstream.end(body);
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ server, recorded })));
}

function psql(url, sql) {
  return execFileSync("psql", [url, "-qAtc", sql], { encoding: "utf8" }).trim();
}

describe("a fleet of three brains behind the edge", { timeout: 600_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  const database = `edgebrain_e2e_fleet_${randomBytes(4).toString("hex")}`;
  const databaseUrl = `${PG_ADMIN_URL.replace(/\/[^/]*$/, "")}/${database}`;
  let s3, bucket, llm, proxy, edge, pinned, edgeUrl;
  const brains = []; // { id, port, authority, env, proc }
  let llmConfig;

  const brainEnv = (id) => ({
    DATABASE_URL: databaseUrl,
    BRAIN_ID: id,
    BRAIN_OBJECT_STORE_URL: `s3://${bucket}`,
    AWS_ENDPOINT_URL: s3.endpoint,
    AWS_ALLOW_HTTP: "true",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "edgebrain-test",
    AWS_SECRET_ACCESS_KEY: "edgebrain-test-secret",
    BRAIN_LLM_CONFIG: llmConfig,
    BRAIN_RUN_LEASE_MS: String(LEASE_MS),
    BRAIN_RUN_LEASE_RENEW_MS: String(LEASE_RENEW_MS),
    BRAIN_SHUTDOWN_GRACE_SECS: "20",
  });

  async function startFleetBrain(brain) {
    brain.proc = startBrain(brainBin, brain.port, brain.dataDir, { ...brain.env, BRAIN_EDGE_AUTHORITY: brain.authority });
    brain.proc.name = brain.id;
    await waitHealthy(`http://127.0.0.1:${brain.port}/ready`, brain.proc, 120_000);
  }

  before(async () => {
    psql(PG_ADMIN_URL, `CREATE DATABASE ${database}`);
    s3 = await startS3();
    bucket = `edgebrain-fleet-${randomBytes(4).toString("hex")}`;
    const created = await fetch(`${s3.endpoint}/${bucket}`, { method: "PUT" });
    assert.ok(created.ok, `create bucket: ${created.status}`);
    llm = await startScriptedLlm();
    const work = tempDir("edgebrain-e2e-fleet-");
    llmConfig = join(work, "llm.toml");
    writeFileSync(llmConfig, scriptedLlmConfig(llm.url, "scripted-agent"));

    const [p1, p2, p3, proxyPort, edgePort, pinned1Port, pinned2Port] = await Promise.all(
      Array.from({ length: 7 }, () => freePort()),
    );
    for (const [index, port] of [p1, p2, p3].entries()) {
      const id = `brain-${index + 1}`;
      brains.push({ id, port, dataDir: tempDir(`edgebrain-e2e-${id}-`), authority: `127.0.0.1:${port}`, env: brainEnv(id) });
    }
    // Brain 3 is known to the fleet edge by its proxy's address, and accepts signatures for it.
    brains[2].authority = `127.0.0.1:${proxyPort}`;
    proxy = await startRecordingProxy(proxyPort, p3);
    // The first brain alone (it generates the sample datasets into the shared store), then the rest.
    await startFleetBrain(brains[0]);
    await Promise.all([startFleetBrain(brains[1]), startFleetBrain(brains[2])]);

    const brainUrls = [`http://127.0.0.1:${p1}`, `http://127.0.0.1:${p2}`, `http://127.0.0.1:${proxyPort}`].join(",");
    edge = await startEdge("fleet-edge", edgePort, { BRAIN_URL: "", BRAIN_URLS: brainUrls, RATE_LIMITS });
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    pinned = [
      { url: `http://127.0.0.1:${pinned1Port}`, proc: startWorkerd("fleet-edge-1", pinned1Port, { BRAIN_URL: `http://127.0.0.1:${p1}`, RATE_LIMITS }) },
      { url: `http://127.0.0.1:${pinned2Port}`, proc: startWorkerd("fleet-edge-2", pinned2Port, { BRAIN_URL: `http://127.0.0.1:${p2}`, RATE_LIMITS }) },
    ];
    await Promise.all([
      waitHealthy(`${edgeUrl}/health`, edge, 120_000),
      ...pinned.map((p) => waitHealthy(`${p.url}/health`, p.proc, 60_000)),
    ]);
  });

  after(async () => {
    await Promise.all([stopProcess(edge), ...(pinned ?? []).map((p) => stopProcess(p.proc))]);
    await Promise.all(brains.map((brain) => stopProcess(brain.proc)));
    proxy?.server.closeAllConnections();
    proxy?.server.close();
    await llm?.close();
    s3?.child.stdin.end();
    try {
      psql(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    } catch {}
  });

  // --- helpers ------------------------------------------------------------------------------

  /** A request through `base` (the fleet edge unless given) as `session`. */
  function call(session, path, { base = edgeUrl, method = "GET", body, headers = {} } = {}) {
    const init = { method, headers: { "x-session-id": session, ...headers }, signal: AbortSignal.timeout(60_000) };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      if (typeof body !== "string") init.headers["content-type"] = "application/json";
    }
    return fetch(`${base}${path}`, init);
  }

  /** A new visitor: the session the edge issues, and the brain that served its first request. */
  async function newTenant() {
    const response = await fetch(`${edgeUrl}/api/v1/datasets`, { headers: { "x-session-id": "new" } });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    return { session: response.headers.get("x-session-id"), brain: response.headers.get(BRAIN_HEADER) };
  }

  // Tenants by their brain, filled by the first test.
  const tenantsOf = new Map();
  async function tenantOn(brainId) {
    while (!(tenantsOf.get(brainId)?.length > 0)) {
      const tenant = await newTenant();
      if (!tenantsOf.has(tenant.brain)) tenantsOf.set(tenant.brain, []);
      tenantsOf.get(tenant.brain).push(tenant.session);
    }
    return tenantsOf.get(brainId).shift();
  }

  /** Posts a chat message; resolves with the run id, the events (id, data) and who served it. */
  async function chat(session, threadId, content, { base = edgeUrl, onEvent = () => {}, signal } = {}) {
    const response = await fetch(`${base}/api/v1/threads/${threadId}/messages`, {
      method: "POST",
      headers: { "x-session-id": session, "content-type": "application/json" },
      body: JSON.stringify({ content }),
      signal: signal ?? AbortSignal.timeout(60_000),
    });
    const result = { status: response.status, runId: response.headers.get("x-edgebrain-run-id"), brain: response.headers.get(BRAIN_HEADER), events: [] };
    if (response.status !== 200) {
      result.body = await response.text();
      return result;
    }
    try {
      await readSse(response, (event) => {
        result.events.push(event);
        onEvent(event, result);
      });
    } catch (error) {
      result.broken = String(error);
    }
    return result;
  }

  async function newThread(session, base = edgeUrl) {
    const response = await call(session, "/api/v1/threads", { base, method: "POST", body: { title: "fleet" } });
    assert.equal(response.status, 201, await response.clone().text());
    return (await response.json()).id;
  }

  const textOf = (events) =>
    events
      .filter((event) => event.data !== "[DONE]")
      .map((event) => JSON.parse(event.data))
      .filter((chunk) => chunk.type === "text-delta")
      .map((chunk) => chunk.delta)
      .join("");

  /** Every message of a thread, oldest first (all pages). */
  async function messagesOf(session, threadId) {
    const messages = [];
    let cursor = null;
    do {
      const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
      const response = await call(session, `/api/v1/threads/${threadId}/messages${query}`);
      assert.equal(response.status, 200);
      const page = await response.json();
      messages.push(...page.messages);
      cursor = page.next_cursor;
    } while (cursor);
    return messages;
  }

  async function assertErrorShape(response, status) {
    assert.equal(response.status, status);
    const body = await json(response);
    assert.equal(typeof body.error?.code, "string", JSON.stringify(body));
    assert.equal(typeof body.error?.message, "string", JSON.stringify(body));
    return body.error;
  }

  // --- tests --------------------------------------------------------------------------------

  test("tenants spread over all three brains, and each tenant's requests land on its one brain", async () => {
    for (let i = 0; i < 24; i++) {
      const tenant = await newTenant();
      for (const path of ["/api/v1/threads", "/api/v1/datasets", "/api/v1/usage"]) {
        const response = await call(tenant.session, path);
        assert.equal(response.status, 200, path);
        await response.arrayBuffer();
        assert.equal(response.headers.get(BRAIN_HEADER), tenant.brain, `${path} of a tenant of ${tenant.brain}`);
      }
      if (!tenantsOf.has(tenant.brain)) tenantsOf.set(tenant.brain, []);
      tenantsOf.get(tenant.brain).push(tenant.session);
    }
    assert.deepEqual([...tenantsOf.keys()].sort(), ["brain-1", "brain-2", "brain-3"], "24 tenants reach all three brains");
  });

  test("a dataset written through brain 1 is read through brain 2; replaced through 2, brain 1 answers the new version", async () => {
    const session = await tenantOn("brain-1");
    const name = `fleet_sales_${randomBytes(3).toString("hex")}`;
    const created = await call(session, `/api/v1/datasets?name=${name}`, {
      method: "POST", body: "region,amount\nnorth,10\nsouth,32\n", headers: { "content-type": "text/csv" },
    });
    assert.equal(created.status, 201, await created.clone().text());
    assert.equal(created.headers.get(BRAIN_HEADER), "brain-1");
    const dataset = await created.json();
    const sql = { sql: `SELECT SUM(amount) AS total FROM ${name}` };

    const throughTwo = await call(session, "/api/v1/queries/sql", { base: pinned[1].url, method: "POST", body: sql });
    assert.equal(throughTwo.status, 200, await throughTwo.clone().text());
    assert.equal(throughTwo.headers.get(BRAIN_HEADER), "brain-2");
    assert.deepEqual((await throughTwo.json()).rows, [{ total: 42 }]);

    const replaced = await call(session, `/api/v1/datasets/${dataset.id}`, {
      base: pinned[1].url, method: "PUT", body: "region,amount\nwest,100\n", headers: { "content-type": "text/csv" },
    });
    assert.equal(replaced.status, 200, await replaced.clone().text());
    assert.equal((await replaced.json()).version, dataset.version + 1);

    const throughOne = await call(session, "/api/v1/queries/sql", { method: "POST", body: sql });
    assert.equal(throughOne.status, 200);
    assert.equal(throughOne.headers.get(BRAIN_HEADER), "brain-1");
    assert.deepEqual((await throughOne.json()).rows, [{ total: 100 }], "brain 1 dropped its stale frame");

    // The Parquet object is in the S3-compatible store, not on a brain's disk.
    const listing = await (await fetch(`${s3.endpoint}/${bucket}?list-type=2&prefix=datasets/${dataset.id}/`)).text();
    assert.match(listing, new RegExp(`<Key>datasets/${dataset.id}/[^<]+\\.parquet</Key>`));
  });

  test("a reconnect to a run executing on brain 1, served by brain 2, gets every event once, in order", async () => {
    const session = await tenantOn("brain-1");
    const threadId = await newThread(session);
    const firstPart = new AbortController();
    let seen = [];
    const started = await chat(session, threadId, SLOW_QUESTION, {
      signal: firstPart.signal,
      onEvent: (event, result) => {
        seen = result.events;
        // Leave after the first pieces of the text, while the model is still writing.
        if (textOf(result.events).length > 0 && result.events.length >= 4) firstPart.abort();
      },
    });
    assert.equal(started.brain, "brain-1");
    assert.ok(started.runId, "the run id header");
    assert.ok(seen.length >= 4, `events before leaving: ${seen.length}`);
    assert.equal(psql(databaseUrl, `SELECT lease_owner FROM chat_runs WHERE id = '${started.runId}'`), "brain-1");

    const lastId = seen.at(-1).id;
    const resumed = await fetch(`${pinned[1].url}/api/v1/runs/${started.runId}/events`, {
      headers: { "x-session-id": session, "last-event-id": lastId },
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.headers.get(BRAIN_HEADER), "brain-2");
    const rest = [];
    await readSse(resumed, (event) => rest.push(event));
    assert.equal(rest.at(-1).data, "[DONE]");
    const all = [...seen, ...rest.slice(0, -1)];
    const ids = all.map((event) => Number(event.id));
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1), "every event once, in order, no gap");
    assert.equal(textOf(all), SLOW_ANSWER);
  });

  test("a signed request captured on its way to brain 3 is refused by brains 1 and 2, and by brain 3 again", async () => {
    const session = await tenantOn("brain-3");
    proxy.recorded.length = 0;
    const normal = await call(session, "/api/v1/threads");
    assert.equal(normal.status, 200);
    assert.equal(normal.headers.get(BRAIN_HEADER), "brain-3");
    const captured = proxy.recorded.find((request) => request.path === "/api/v1/threads");
    assert.ok(captured?.headers["x-edgebrain-signature"], "the proxy saw the signed request");
    const replay = (port) =>
      fetch(`http://127.0.0.1:${port}${captured.path}`, { method: captured.method, headers: captured.headers });
    for (const brain of brains.slice(0, 2)) {
      const error = await assertErrorShape(await replay(brain.port), 401);
      assert.equal(error.code, "unauthorized");
      assert.match(error.message, /brain|authority/i, `${brain.id}: ${error.message}`);
    }
    // Brain 3 itself: the signature is for it, but its nonce was used.
    await assertErrorShape(await replay(brains[2].port), 401);
  });

  test("kill -9 of a brain under load: its tenants' reads go on elsewhere, its run fails within the lease, others are untouched", async () => {
    const victim = brains[0];
    const [mine, other] = [await tenantOn("brain-1"), await tenantOn("brain-2")];
    const [myThread, otherThread] = [await newThread(mine), await newThread(other)];
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      process.kill(-victim.proc.child.pid, "SIGKILL");
    };
    // The other brain's run, and the victim's run, killed once its text is flowing.
    const otherRun = chat(other, otherThread, SLOW_QUESTION);
    const myRun = chat(mine, myThread, SLOW_QUESTION, {
      onEvent: (_, result) => {
        if (textOf(result.events).length > 40) kill();
      },
    });
    // A steady read + query load from tenants of every brain while it happens.
    const readers = [mine, ...(tenantsOf.get("brain-1") ?? []).slice(0, 2), other, await tenantOn("brain-3")];
    const failures = [];
    let afterKill = 0;
    let stop = false;
    const load = Promise.all(
      readers.map(async (session, index) => {
        while (!stop) {
          const sentAfterKill = killed;
          const response = index % 2
            ? await call(session, "/api/v1/queries/sql", { method: "POST", body: { sql: QUERY } })
            : await call(session, "/api/v1/threads");
          const body = await response.text();
          if (response.status !== 200) failures.push(`${response.status} ${body.slice(0, 200)}`);
          else if (sentAfterKill) {
            afterKill += 1;
            assert.notEqual(response.headers.get(BRAIN_HEADER), "brain-1");
          }
        }
      }),
    );
    const mineResult = await myRun;
    assert.ok(killed, "the victim was killed mid-run");
    await victim.proc.exited;
    // Keep the load on for a while after the kill.
    const until = Date.now() + 2_000;
    while (Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    stop = true;
    await load;
    assert.deepEqual(failures, [], "every read and query succeeded");
    assert.ok(afterKill > 5, `requests served after the kill: ${afterKill}`);

    // The victim's run is marked failed by another brain once its lease expires.
    const deadline = Date.now() + LEASE_MS + 4 * LEASE_RENEW_MS + 5_000;
    let run;
    while (Date.now() < deadline) {
      run = await (await call(mine, `/api/v1/runs/${mineResult.runId}`)).json();
      if (run.state !== "running" && run.state !== "queued") break;
      await new Promise((resolve) => setTimeout(resolve, 100)); // poll interval
    }
    assert.equal(run.state, "failed", JSON.stringify(run));
    assert.match(run.error ?? "", /lease/, JSON.stringify(run));
    // The committed question is still there; the run's stored events end in an error.
    const messages = await messagesOf(mine, myThread);
    assert.equal(messages[0].role, "user");
    assert.equal(messages[0].parts[0].text, SLOW_QUESTION);

    // The other brain's run was untouched.
    const otherResult = await otherRun;
    assert.equal(otherResult.status, 200);
    assert.equal(textOf(otherResult.events), SLOW_ANSWER);
    const otherState = await (await call(other, `/api/v1/runs/${otherResult.runId}`)).json();
    assert.equal(otherState.state, "succeeded");

    // A write of the victim's tenant goes to its next brain (the edge passes the dead one over).
    const write = await call(mine, "/api/v1/threads", { method: "POST", body: { title: "after the kill" } });
    assert.equal(write.status, 201, await write.clone().text());
    assert.notEqual(write.headers.get(BRAIN_HEADER), "brain-1");

    // The victim comes back with its id (it would end its own unfinished runs at once).
    await startFleetBrain(victim);
  });

  test("a rolling restart of all three brains under chat + query load loses nothing", async () => {
    const workers = [];
    for (const id of ["brain-1", "brain-2", "brain-3"]) {
      for (let k = 0; k < 2; k++) {
        const session = await tenantOn(id);
        workers.push({ session, thread: await newThread(session), asked: [] });
      }
    }
    const failures = [];
    let requests = 0;
    let stop = false;
    const load = Promise.all(
      workers.map(async (worker, index) => {
        for (let turn = 0; !stop; turn++) {
          requests += 1;
          if (turn % 3 === 2) {
            const question = `Turn ${index}-${turn}`;
            const result = await chat(worker.session, worker.thread, question);
            if (result.status !== 200) failures.push({ what: "chat", status: result.status, body: result.body });
            else {
              worker.asked.push(question);
              assert.equal(result.broken, undefined, `${question}: the stream broke`);
              assert.equal(textOf(result.events), quickAnswer(question));
            }
          } else {
            const response = turn % 3
              ? await call(worker.session, "/api/v1/queries/sql", { method: "POST", body: { sql: QUERY } })
              : await call(worker.session, `/api/v1/threads/${worker.thread}/messages`);
            const body = await response.text();
            if (response.status !== 200) failures.push({ what: "read", status: response.status, body });
          }
        }
      }),
    );
    for (const brain of brains) {
      const status = await stopProcess(brain.proc, 30_000);
      assert.equal(status.signal, null, `${brain.id} exited by itself after draining`);
      await startFleetBrain(brain);
    }
    stop = true;
    await load;
    assert.ok(requests > 30, `requests during the restart: ${requests}`);
    // Reads and queries are retried on another brain; a chat message goes to the next brain
    // when its own is draining or known to be down.
    assert.deepEqual(failures, [], "no request failed");
    for (const worker of workers) {
      const messages = await messagesOf(worker.session, worker.thread);
      const questions = messages.filter((m) => m.role === "user").map((m) => m.parts[0].text);
      assert.deepEqual(questions, worker.asked, "every question that was answered is stored");
      const answers = messages.filter((m) => m.role === "assistant");
      assert.equal(answers.length, worker.asked.length, "and its answer");
    }
  });
});
