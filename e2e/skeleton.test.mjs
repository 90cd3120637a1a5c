// End-to-end: browser-like client → edge (real workerd via wrangler dev) → brain → database.
// Run by scripts/test with BRAIN_BIN and EDGEBRAIN_NODE_DIR set.
import { describe, before, after, test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer } from "node:net";
import { randomUUID } from "node:crypto";
import {
  eventually, freePort, readSse, requireEnv, startBrain, startEdge, startWorkerd, stopProcess, tempDir,
  waitHealthy,
} from "./support.mjs";

const REQUEST_TIMEOUT = () => AbortSignal.timeout(20_000);

async function json(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (status ${response.status}): ${text.slice(0, 500)}`);
  }
}

function assertErrorShape(body, code, requestId) {
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.request_id, "string");
  if (requestId) assert.equal(body.error.request_id, requestId);
}

describe("walking skeleton through the edge", { timeout: 240_000 }, () => {
  const brainBin = requireEnv("BRAIN_BIN");
  let brain, edge, slowEdge, directEdge, blackhole;
  let brainUrl, edgeUrl, slowEdgeUrl, directEdgeUrl;
  const blackholeSockets = new Set();

  before(async () => {
    const [brainPort, edgePort, slowEdgePort, directEdgePort] = await Promise.all([
      freePort(), freePort(), freePort(), freePort(),
    ]);
    brainUrl = `http://127.0.0.1:${brainPort}`;
    edgeUrl = `http://127.0.0.1:${edgePort}`;
    slowEdgeUrl = `http://127.0.0.1:${slowEdgePort}`;
    directEdgeUrl = `http://127.0.0.1:${directEdgePort}`;

    // A brain that accepts connections and never answers, for the upstream timeout.
    blackhole = createServer((socket) => {
      blackholeSockets.add(socket);
      socket.on("close", () => blackholeSockets.delete(socket));
      socket.on("error", () => {});
    });
    await new Promise((resolve) => blackhole.listen(0, "127.0.0.1", resolve));

    brain = startBrain(brainBin, brainPort, tempDir("edgebrain-e2e-data-"), { BRAIN_MAX_BODY_BYTES: "65536" });
    edge = await startEdge("edge", edgePort, { BRAIN_URL: brainUrl });
    slowEdge = await startEdge("slow-edge", slowEdgePort, {
      BRAIN_URL: `http://127.0.0.1:${blackhole.address().port}`,
      UPSTREAM_TIMEOUT_MS: "700",
      MAX_HEADER_BYTES: "4096",
      MAX_URL_BYTES: "1024",
    });
    directEdge = startWorkerd("direct-edge", directEdgePort, { BRAIN_URL: brainUrl });
    await Promise.all([
      waitHealthy(`${brainUrl}/ready`, brain, 60_000),
      waitHealthy(`${edgeUrl}/health`, edge, 120_000),
      waitHealthy(`${slowEdgeUrl}/health`, slowEdge, 120_000),
      waitHealthy(`${directEdgeUrl}/health`, directEdge, 60_000),
    ]);
  });

  after(async () => {
    await Promise.all([stopProcess(edge), stopProcess(slowEdge), stopProcess(directEdge), stopProcess(brain)]);
    for (const socket of blackholeSockets) socket.destroy();
    await new Promise((resolve) => blackhole?.close(resolve) ?? resolve());
  });

  test("GET /health is answered by the edge itself", async () => {
    const response = await fetch(`${edgeUrl}/health`, { signal: REQUEST_TIMEOUT() });
    assert.equal(response.status, 200);
    const body = await json(response);
    assert.equal(body.service, "edge");
    assert.equal(body.status, "ok");
    assert.match(response.headers.get("x-request-id"), /^[0-9a-f-]{36}$/);
  });

  test("GET /api/v1/… reaches the brain with method, path, query and headers intact", async () => {
    const requestId = `e2e-${randomUUID()}`;
    const response = await fetch(`${edgeUrl}/api/v1/diag/echo?b=2&a=1&a=%20x`, {
      headers: { "x-request-id": requestId, "x-custom": "kept", accept: "application/json" },
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-request-id"), requestId);
    const echo = await json(response);
    assert.equal(echo.method, "GET");
    assert.equal(echo.path, "/api/v1/diag/echo");
    assert.equal(echo.query, "b=2&a=1&a=%20x");
    assert.equal(echo.request_id, requestId);
    const headers = Object.fromEntries(echo.headers);
    assert.equal(headers["x-custom"], "kept");
    assert.equal(headers["x-request-id"], requestId);
    assert.equal(echo.body_bytes, 0);
  });

  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    test(`${method} bodies cross the edge byte for byte`, async () => {
      const payload = { question: "revenue by store?", nested: { n: [1, 2, 3] }, unicode: "żółw 🦀" };
      const raw = JSON.stringify(payload);
      const response = await fetch(`${edgeUrl}/api/v1/diag/echo`, {
        method,
        headers: { "content-type": "application/json" },
        body: raw,
        signal: REQUEST_TIMEOUT(),
      });
      assert.equal(response.status, 200);
      const echo = await json(response);
      assert.equal(echo.method, method);
      assert.equal(echo.body_bytes, Buffer.byteLength(raw));
      assert.deepEqual(echo.body, payload);
    });
  }

  test("the diagnostic SSE stream is not buffered by any hop", async () => {
    const events = 4;
    const intervalMs = 400;
    const response = await fetch(`${edgeUrl}/api/v1/diag/stream?events=${events}&interval_ms=${intervalMs}`, {
      headers: { accept: "text/event-stream" },
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/event-stream/);
    const ticks = [];
    await readSse(response, (event) => ticks.push({ ...event, tick: JSON.parse(event.data) }));
    assert.deepEqual(ticks.map((t) => t.event), Array(events).fill("tick"));
    assert.deepEqual(ticks.map((t) => t.tick.seq), [1, 2, 3, 4]);
    assert.ok(ticks.every((t) => t.tick.of === events));
    // The first event was in the client's hands before the brain wrote the last one
    // (same machine, same clock): nothing between them held the stream back.
    const firstReceived = ticks[0].receivedAt;
    const lastSent = ticks.at(-1).tick.sent_at_ms;
    assert.ok(firstReceived < lastSent, `first event received at ${firstReceived}, last sent at ${lastSent}`);
  });

  test("bad input gets the error shape with a 4xx through the edge; direct calls are refused", async () => {
    // The brain only accepts requests the edge signed: unsigned, it answers 401 in the same shape.
    const direct = await fetch(`${brainUrl}/api/v1/diag/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"unterminated": ',
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(direct.status, 401);
    assertErrorShape(await json(direct), "unauthorized", direct.headers.get("x-request-id"));
    for (const base of [edgeUrl]) {
      const malformed = await fetch(`${base}/api/v1/diag/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"unterminated": ',
        signal: REQUEST_TIMEOUT(),
      });
      assert.equal(malformed.status, 400, base);
      assertErrorShape(await json(malformed), "invalid_json", malformed.headers.get("x-request-id"));

      const oversize = await fetch(`${base}/api/v1/diag/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ blob: "x".repeat(100_000) }),
        signal: REQUEST_TIMEOUT(),
      });
      assert.equal(oversize.status, 413, base);
      assertErrorShape(await json(oversize), "payload_too_large");

      const badUtf8 = await fetch(`${base}/api/v1/%FF%FE/%C3%28`, { signal: REQUEST_TIMEOUT() });
      assert.ok(badUtf8.status >= 400 && badUtf8.status < 500, `${base}: ${badUtf8.status}`);
      assertErrorShape(await json(badUtf8), "not_found");

      const badQuery = await fetch(`${base}/api/v1/diag/stream?events=lots`, { signal: REQUEST_TIMEOUT() });
      assert.equal(badQuery.status, 400, base);
      assertErrorShape(await json(badQuery), "invalid_query");
    }
  });

  test("an oversize chunked upload is answered 413 through the edge, never 5xx", async () => {
    // No content-length, so the edge cannot refuse it up front: the brain answers 413 after
    // its 64 KiB limit while the client is still uploading, and drains the rest so the edge's
    // subrequest completes (without the drain the edge sees a reset and answers 502). A raw
    // socket lets the client read the answer before sending more, as a browser does; against
    // workerd directly, because wrangler dev's own proxy worker adds failure modes of its own.
    const { port } = new URL(directEdgeUrl);
    for (let attempt = 0; attempt < 8; attempt++) {
      const answer = await new Promise((resolve, reject) => {
        const socket = connect(Number(port), "127.0.0.1");
        let received = "";
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`no answer; got ${JSON.stringify(received.slice(0, 300))}`));
        }, 15_000);
        socket.on("error", () => {}); // the runtime may close while we still write: irrelevant here
        socket.on("data", (chunk) => {
          received += chunk.toString("latin1");
          if (received.includes("payload_too_large") || /^HTTP\/1\.1 [^4]/.test(received)) {
            clearTimeout(timer);
            socket.destroy();
            resolve(received);
          }
        });
        socket.on("connect", () => {
          const piece = "z".repeat(64 * 1024);
          socket.write(
            "POST /api/v1/diag/echo HTTP/1.1\r\nhost: edge.test\r\ncontent-type: application/json\r\n" +
              "transfer-encoding: chunked\r\n\r\n",
          );
          socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`.repeat(2));
        });
      });
      const [statusLine] = answer.split("\r\n");
      assert.equal(statusLine, "HTTP/1.1 413 Payload Too Large", `attempt ${attempt}: ${answer.slice(0, 300)}`);
      assert.match(answer, /"error":\{"code":"payload_too_large","message":"[^"]+","request_id":"[^"]+"\}/);
    }
  });

  test("the edge refuses oversize bodies by content-length before the brain sees them", async () => {
    const response = await fetch(`${edgeUrl}/api/v1/diag/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ blob: "y".repeat(11 * 1024 * 1024) }),
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(response.status, 413);
    const body = await json(response);
    assertErrorShape(body, "payload_too_large");
    assert.match(body.error.message, /limit is 10485760/);
  });

  test("the request id is the same in the response and in the brain's log line", async () => {
    const response = await fetch(`${edgeUrl}/api/v1/diag/echo`, { signal: REQUEST_TIMEOUT() });
    assert.equal(response.status, 200);
    const requestId = response.headers.get("x-request-id");
    assert.match(requestId, /^[0-9a-f-]{36}$/, "the edge mints an id when the client sends none");
    await response.arrayBuffer();
    await eventually(`brain log line with ${requestId}`, () =>
      brain.output.split("\n").some((line) => line.includes(requestId) && line.includes("/api/v1/diag/echo")),
    );
  });

  test("the edge's configured header and URL limits answer 431 and 414 in the error shape", async () => {
    // Refused by the edge core before any proxying (this edge's brain never answers).
    const headers = await fetch(`${slowEdgeUrl}/api/v1/diag/echo`, {
      headers: { "x-padding": "h".repeat(6000) },
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(headers.status, 431);
    assertErrorShape(await json(headers), "headers_too_large", headers.headers.get("x-request-id"));

    const url = await fetch(`${slowEdgeUrl}/api/v1/diag/echo?q=${"u".repeat(2000)}`, { signal: REQUEST_TIMEOUT() });
    assert.equal(url.status, 414);
    assertErrorShape(await json(url), "uri_too_long", url.headers.get("x-request-id"));
  });

  test("the edge answers 504 in the error shape when the brain does not answer in time", async () => {
    const started = Date.now();
    const response = await fetch(`${slowEdgeUrl}/api/v1/diag/echo`, { signal: REQUEST_TIMEOUT() });
    assert.equal(response.status, 504);
    const body = await json(response);
    assertErrorShape(body, "gateway_timeout", response.headers.get("x-request-id"));
    assert.ok(Date.now() - started >= 600, "answered before the configured timeout");
  });

  test("with the brain stopped the edge answers 502 in the error shape", async () => {
    const status = await stopProcess(brain);
    assert.equal(status.code, 0, `brain did not shut down cleanly on SIGTERM: ${JSON.stringify(status)}`);
    assert.match(brain.output, /shut|stopp/i, "brain logged its shutdown");
    const requestId = `e2e-down-${randomUUID()}`;
    const response = await fetch(`${edgeUrl}/api/v1/diag/echo`, {
      headers: { "x-request-id": requestId },
      signal: REQUEST_TIMEOUT(),
    });
    assert.equal(response.status, 502);
    assertErrorShape(await json(response), "bad_gateway", requestId);
    assert.equal(response.headers.get("x-request-id"), requestId);
  });
});
