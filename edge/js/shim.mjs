// Entry module of the edge Worker: instantiates the Rust wasm and exports its fetch handler.
// scripts/build-edge bundles this file with wasm-bindgen's glue into edge/build/worker.mjs.
import wasmModule from "./index_bg.wasm";
import * as core from "./pkg/index.js";
import { fetchOrReset } from "./trap.mjs";
import { executeRequest } from "./executor.mjs";

const { initSync, fetch: edgeFetch, __wbg_reset_state, rateLimitApply } = core;
initSync({ module: wasmModule });

// The core's steps are carried out by the thin JS executor (edge/js/executor.mjs), which hands
// what is not a proxied exchange (sign-in, a key refresh, a renewal) to the Rust adapter.
// `EDGE_EXECUTOR = "rust"` has the Rust adapter carry out the exchanges too: the other design,
// which scripts/bench-edge measures side by side and the e2e suite runs against as well.
const jsExecutor = (request, env, ctx) => executeRequest(core, request, env, ctx);

export default {
  fetch(request, env, ctx) {
    const handler = env.EDGE_EXECUTOR === "rust" ? edgeFetch : jsExecutor;
    return fetchOrReset(handler, __wbg_reset_state, request, env, ctx);
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
