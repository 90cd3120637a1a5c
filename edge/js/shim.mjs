// Entry module of the edge Worker: instantiates the Rust wasm and exports its fetch handler.
// scripts/build-edge bundles this file with wasm-bindgen's glue into edge/build/worker.mjs.
import wasmModule from "./index_bg.wasm";
import { initSync, fetch as edgeFetch, __wbg_reset_state, rateLimitApply } from "./pkg/index.js";

initSync({ module: wasmModule });

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// Last line of defence. The Rust handler never throws by design; if the wasm ever traps
// (a panic aborts), answer in the project's error shape and start a fresh instance, since a
// trapped instance is unusable for every later request.
function internalError(request) {
  const given = request.headers.get("x-request-id");
  const requestId = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
  const body = { error: { code: "internal", message: "the edge failed unexpectedly", request_id: requestId } };
  return new Response(JSON.stringify(body), {
    status: 500,
    headers: { "content-type": "application/json", "cache-control": "no-store", "x-request-id": requestId },
  });
}

export default {
  async fetch(request, env, ctx) {
    try {
      return await edgeFetch(request, env, ctx);
    } catch (error) {
      console.error("edge wasm failed; resetting instance", error);
      try {
        __wbg_reset_state();
      } catch (resetError) {
        console.error("edge wasm reset failed", resetError);
      }
      return internalError(request);
    }
  },
};

// The rate-limit Durable Object: one instance per bucket key (`rl:{policy}:{kind}:{id}`), so
// every edge location draws from the same, exactly counted bucket. The bucket arithmetic is
// the Rust core's (`rateLimitApply`, clock = this object's own); this class only keeps the
// state. Storage operations hold the object's input gate, so read-modify-write is atomic.
export class RateLimiter {
  constructor(state) {
    this.state = state;
    this.bucket = undefined;
  }

  async fetch(request) {
    const take = await request.text();
    if (this.bucket === undefined) this.bucket = (await this.state.storage.get("bucket")) ?? null;
    const out = JSON.parse(rateLimitApply(take, JSON.stringify(this.bucket), Date.now()));
    if (out.error) return new Response(out.error, { status: 400 });
    this.bucket = out.state;
    await this.state.storage.put("bucket", out.state);
    return Response.json(out.verdict);
  }
}
