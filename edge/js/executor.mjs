// The thin JS executor of the edge's exchanges: the wasm core decides every step and this loop
// does the I/O each action names, calling the core synchronously once per step with one JSON
// string in and one out (edge/src/step_wire.rs) — no wasm-side futures, no Rust glue around
// the runtime's objects. Requests the core does not step (sign-in, a JWT key refresh, a
// renewal) go to the Rust adapter whole (`{"do":"rust"}`).
import { headerLines, headerPairs } from "./headers.mjs";
import { fetchWithDeadline } from "./fetch_deadline.mjs";
import { BodyLimit, readAtMost } from "./body_limit.mjs";
import { guardEventStream } from "./stream_guard.mjs";

/**
 * Answers `request` through the core's steps. `core` holds the wasm exports: beginRequest,
 * stepRequest, stepBody, endRequest, and `fetch` (the Rust adapter).
 */
export async function executeRequest(core, request, env, ctx) {
  const first = JSON.parse(core.beginRequest(request.method, request.url, headerLines(request.headers), env));
  if (first.do === "rust") return core.fetch(request, env, ctx);
  // The edge's own answer, before any exchange began.
  if (first.id === undefined) return respond(first);
  try {
    const response = await run(core, first, { request, env, ctx, body: null });
    // Only a stale copy's refresh ends without an answer.
    if (!response) throw new Error("the exchange ended without an answer");
    return response;
  } finally {
    core.endRequest(first.id);
  }
}

/** Carries out actions from `action` on until one answers (a Response) or ends (null). */
async function run(core, action, io) {
  let upstream = null; // the brain's response of the last attempt
  let cached = null; // the cache's hit
  for (;;) {
    let report;
    switch (action.do) {
      case "take":
        report = await takeTokens(io.env, action);
        break;
      case "read": {
        let bytes = null;
        let failed = false;
        try {
          bytes = await readAtMost(io.request.body, action.max);
        } catch {
          failed = true;
        }
        io.body = bytes;
        action = JSON.parse(core.stepBody(action.id, bytes, failed));
        continue;
      }
      case "match":
        // A lookup that fails is a miss, as in the Rust adapter.
        cached = (await caches.default.match(action.key).catch(() => null)) ?? null;
        report = cached ? { e: "cached", headers: headerLines(cached.headers) } : { e: "cached" };
        break;
      case "fetch": {
        // A retry: the last attempt's answer (a draining 503) has nothing to read.
        upstream?.body?.cancel().catch(() => {});
        upstream = null;
        const outcome = await fetchBrain(action, io);
        if (outcome instanceof Response) {
          upstream = outcome;
          report = { e: "upstream", status: outcome.status, headers: headerLines(outcome.headers), body: outcome.body !== null };
        } else {
          report = { e: "failed", why: outcome };
        }
        break;
      }
      case "log":
        console.error(action.line);
        report = { e: "logged" };
        break;
      case "serve": {
        if (action.refresh !== null) refreshInBackground(core, action.refresh, io);
        try {
          return new Response(cached.body, { status: cached.status, headers: headerPairs(action.headers) });
        } catch {
          report = { e: "rejected" };
        }
        break;
      }
      case "stream": {
        try {
          return streamBack(upstream, action, io.ctx);
        } catch {
          report = { e: "rejected" };
        }
        break;
      }
      case "store": {
        try {
          const stored = new Response(upstream.body, { status: upstream.status, headers: headerPairs(action.headers) });
          await caches.default.put(action.key, stored);
        } catch (error) {
          console.error(`cache put ${action.key} failed: ${error}`);
        }
        return null;
      }
      case "discard":
        upstream?.body?.cancel().catch(() => {});
        return null;
      case "respond":
        return respond(action);
      default:
        throw new Error(`the core asked for an unknown action: ${action.do}`);
    }
    action = JSON.parse(core.stepRequest(action.id, JSON.stringify(report)));
  }
}

/** The edge's own answer. Bytes, not a string: a string body would get a content type. */
function respond(action) {
  const body = action.body === "" ? null : new TextEncoder().encode(action.body);
  return new Response(body, { status: action.status, headers: headerPairs(action.headers) });
}

/** Both buckets at once; the Durable Object answers each with a verdict. */
async function takeTokens(env, action) {
  try {
    const namespace = env.RATE_LIMITER;
    if (!namespace) return { e: "tokens", error: "no RATE_LIMITER Durable Object binding" };
    const ask = async ([key, take]) => {
      const stub = namespace.get(namespace.idFromName(key));
      const response = await stub.fetch("https://rate-limiter.invalid/take", { method: "POST", body: JSON.stringify(take) });
      if (!response.ok) throw new Error(`status ${response.status}`);
      return response.json();
    };
    const [caller, network] = await Promise.all([ask(action.caller), action.network ? ask(action.network) : null]);
    return { e: "tokens", caller, network };
  } catch (error) {
    return { e: "tokens", error: String(error) };
  }
}

/** The brain's Response, or why none came: "timed_out", "too_large" or "unreachable". */
async function fetchBrain(action, io) {
  const init = { method: action.method, redirect: "manual", headers: headerPairs(action.headers) };
  let limit;
  if (action.body === "bytes") init.body = io.body;
  else if (action.body === "stream" && io.request?.body) {
    limit = new BodyLimit(io.request.body, action.max);
    init.body = limit.stream;
    // Streaming request bodies must be half-duplex (Fetch standard; undici).
    init.duplex = "half";
  }
  try {
    const response = await fetchWithDeadline(action.url, init, action.timeout, limit);
    return response === null ? "timed_out" : response;
  } catch {
    return limit?.exceeded ? "too_large" : "unreachable";
  }
}

/** The brain's answer for the client; with `store`, its body teed into the cache too. */
function streamBack(upstream, action, ctx) {
  let body = upstream.body;
  if (action.store && body) {
    const [toClient, toCache] = body.tee();
    body = toClient;
    const stored = new Response(toCache, { status: upstream.status, headers: headerPairs(action.store.headers) });
    ctx.waitUntil(
      caches.default.put(action.store.key, stored).catch((error) => console.error(`cache put ${action.store.key} failed: ${error}`)),
    );
  }
  if (action.body === "null") body = null;
  else if (action.body === "guard" && body) body = guardEventStream(body, new TextEncoder().encode(action.event));
  return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers: headerPairs(action.headers) });
}

/** A stale copy's refresh, stepped after the answer. */
function refreshInBackground(core, id, io) {
  const refresh = async () => {
    try {
      const first = JSON.parse(core.stepRequest(id, '{"e":"start"}'));
      await run(core, first, { request: null, env: io.env, ctx: io.ctx, body: io.body });
    } catch (error) {
      console.error(`refreshing a stale copy failed: ${error}`);
    } finally {
      core.endRequest(id);
    }
  };
  io.ctx.waitUntil(refresh());
}
