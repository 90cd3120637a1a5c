// The edge as a Vercel Edge Function (api/edge.js) in Vercel's open-source runtime
// (`edge-runtime`, the sandbox `vercel dev` uses), for the end-to-end tests. The function is
// bundled the way Vercel bundles it (esbuild; the `?module` wasm import becomes a
// WebAssembly.Module compiled outside the sandbox and handed in), from the same
// edge/build/index_bg.wasm that wrangler uploads and workerd runs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { EdgeRuntime, runServer } from "edge-runtime";
import { ROOT, freePort } from "./support.mjs";

export const EDGE_WASM = join(ROOT, "edge/build/index_bg.wasm");
const WASM_GLOBAL = "__EDGEBRAIN_WASM_MODULE__";

/** api/edge.js bundled into one script for the sandbox, its wasm import bound to a global. */
async function bundleFunction() {
  const wasmAsGlobal = {
    name: "wasm-module-global",
    setup(builder) {
      builder.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({ path: args.path, namespace: "wasm-global" }));
      builder.onLoad({ filter: /.*/, namespace: "wasm-global" }, () => ({ contents: `export default globalThis.${WASM_GLOBAL};` }));
    },
  };
  const result = await build({
    entryPoints: [join(ROOT, "api/edge.js")],
    bundle: true,
    format: "iife",
    globalName: "__edgeFunction",
    platform: "neutral",
    target: "es2022",
    write: false,
    plugins: [wasmAsGlobal],
    logLevel: "silent",
  });
  // Vercel calls the default export per request, with a context whose waitUntil keeps
  // background work alive; edge-runtime dispatches FetchEvents.
  return `${result.outputFiles[0].text}
addEventListener("fetch", (event) => {
  event.respondWith(__edgeFunction.default(event.request, { waitUntil: (promise) => event.waitUntil(promise) }));
});`;
}

/**
 * Serves api/edge.js with `env` as its process.env on a free loopback port. Resolves to
 * edge-runtime's server handle (`url`, `close()`).
 */
export async function startEdgeFunction(env, port = undefined) {
  const module = new WebAssembly.Module(readFileSync(EDGE_WASM));
  const runtime = new EdgeRuntime({
    initialCode: await bundleFunction(),
    // The module is compiled here, outside the sandbox (edge-runtime, like Vercel, refuses to
    // compile wasm from bytes inside it); the sandbox gets this realm's WebAssembly with it, as
    // on Vercel the platform-compiled module and the function share one realm.
    extend: (context) => Object.assign(context, { [WASM_GLOBAL]: module, WebAssembly, process: { env } }),
  });
  return runServer({ runtime, host: "127.0.0.1", port: port ?? (await freePort()) });
}
