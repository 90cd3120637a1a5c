// The edge as a Vercel Edge Function: the same wasm (edge/build/index_bg.wasm, built by
// scripts/build-edge) and wasm-bindgen glue that the Workers entry (edge/js/shim.mjs) bundles,
// called with an env built from the function's environment variables. vercel.json routes
// `/api/(.*)` and `/health` here; the function still sees the original URL, and the edge core
// does not apply those two routing rewrites itself (edge::core::rules::VERCEL_EDGE_FUNCTION).
//
// What differs from Cloudflare, deliberately:
// - Cache: Vercel Edge has no `caches.default`; routes with a `cache` policy answer
//   `x-edge-cache: BYPASS` (use the brain's own Cache-Control with Vercel's CDN instead).
// - Time to first byte: Vercel requires Edge Functions to start answering within 25 s, so
//   UPSTREAM_TIMEOUT_MS defaults to 20000 here (30000 on Cloudflare) and the edge's own 504
//   arrives first.
// - Rate limits: there is no Durable Object to hold exact global buckets. While `RATE_LIMITS`
//   is set every request answers 500 `internal` naming it, as for any invalid variable: the
//   edge never pretends to limit. Use Vercel's Firewall rate limiting, or deploy on Cloudflare.
// - Client address: Vercel states it in `x-real-ip` (overwriting whatever a client sent), so
//   CLIENT_IP_HEADER is fixed to that here; a client's own `cf-connecting-ip` means nothing on
//   Vercel. The address is the network the brain's token budget counts anonymous callers by.
// - Body limit: the same adapter counts request bodies as they stream (edge/js/body_limit.mjs),
//   so MAX_BODY_BYTES holds for chunked uploads here too.
import wasmModule from "../edge/build/index_bg.wasm?module";
import * as core from "../edge/build/glue.mjs";
import { fetchOrReset, internalError } from "../edge/js/trap.mjs";
import { executeRequest } from "../edge/js/executor.mjs";

export const config = { runtime: "edge" };

const { initSync, __wbg_reset_state } = core;
initSync({ module: wasmModule });
// The core's steps carried out by the JS executor, as on Workers (edge/js/shim.mjs).
const execute = (request, env, ctx) => executeRequest(core, request, env, ctx);

/** The edge's variables (wrangler `[vars]` and secrets on Cloudflare). */
const VARS = [
  "BRAIN_URL", "BRAIN_URLS", "UPSTREAM_TIMEOUT_MS", "MAX_BODY_BYTES", "MAX_HEADER_BYTES", "MAX_HEADER_COUNT", "MAX_URL_BYTES",
  "EDGE_SIGNING_SECRETS", "SIGN_BODY_MAX_BYTES", "SESSION_KEYS", "SESSION_TTL_SECS", "ROUTES",
  "RATE_LIMITS", "CORS", "CACHE_VERSION", "AUTH_CONFIG", "AUTH_HS256_SECRETS",
  "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_SCOPES", "OIDC_SCOPE_CLAIMS",
  "OIDC_ROLE_CLAIMS", "OIDC_DISCOVERY_TTL_SECS", "SIGNIN_ACCESS_TTL_SECS", "SIGNIN_REFRESH_TTL_SECS",
  "SIGNIN_MAX_AGE_SECS",
];

/** The header in which Vercel's proxy states the client's address. */
const VERCEL_CLIENT_IP_HEADER = "x-real-ip";

/** Below Vercel's 25 s limit for an Edge Function's first byte. */
const VERCEL_UPSTREAM_TIMEOUT_MS = 20_000;

let env;
let envError = null;
function edgeEnv() {
  if (env || envError) return;
  const values = {};
  for (const name of VARS) {
    const value = process.env[name];
    if (value !== undefined && value !== "") values[name] = value;
  }
  values.UPSTREAM_TIMEOUT_MS ??= String(VERCEL_UPSTREAM_TIMEOUT_MS);
  values.CLIENT_IP_HEADER = VERCEL_CLIENT_IP_HEADER;
  if (values.RATE_LIMITS !== undefined) {
    envError =
      "RATE_LIMITS is set, but Vercel Edge Functions have no Durable Objects to keep exact global " +
      "rate limits: unset RATE_LIMITS (and rate_limit in ROUTES) and limit with Vercel's Firewall";
    console.error(`edge misconfigured: ${envError}`);
  }
  env = values;
}

export default async function handler(request, context) {
  edgeEnv();
  if (envError) return internalError(request, envError);
  // The Workers ExecutionContext the adapter expects; waitUntil keeps background work alive.
  const ctx = {
    waitUntil: (promise) => context?.waitUntil?.(promise),
    passThroughOnException() {},
    props: {},
  };
  return fetchOrReset(execute, __wbg_reset_state, request, env, ctx);
}
