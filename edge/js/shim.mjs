// Entry module of the edge Worker: instantiates the Rust wasm and exports its fetch handler.
// scripts/build-edge bundles this file with wasm-bindgen's glue into edge/build/worker.mjs.
import wasmModule from "./index_bg.wasm";
import { initSync, fetch as edgeFetch, __wbg_reset_state } from "./pkg/index.js";

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
