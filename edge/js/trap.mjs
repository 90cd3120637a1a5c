// The last line of defence shared by both entries (edge/js/shim.mjs on Workers, api/edge.js on
// Vercel). The Rust handler never throws by design; if the wasm ever traps (a panic aborts),
// answer in the project's error shape and start a fresh instance, since a trapped instance is
// unusable for every later request.

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A 500 `internal` in the error shape, keeping the caller's request id when it is valid. */
export function internalError(request, message) {
  const given = request.headers.get("x-request-id");
  const requestId = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
  const body = { error: { code: "internal", message, request_id: requestId } };
  return new Response(JSON.stringify(body), {
    status: 500,
    headers: { "content-type": "application/json", "cache-control": "no-store", "x-request-id": requestId },
  });
}

/** Calls the wasm's fetch handler; on a trap, resets the instance and answers 500. */
export async function fetchOrReset(edgeFetch, resetState, request, env, ctx) {
  try {
    return await edgeFetch(request, env, ctx);
  } catch (error) {
    console.error("edge wasm failed; resetting instance", error);
    try {
      resetState();
    } catch (resetError) {
      console.error("edge wasm reset failed", resetError);
    }
    return internalError(request, "the edge failed unexpectedly");
  }
}
