// Writes a workerd config that serves the built edge (edge/build/worker.mjs + index_bg.wasm,
// the same files wrangler uploads) on 127.0.0.1:PORT with the given text bindings, and an
// outbound network that may reach loopback (where the brain listens).
// Used by e2e/support.mjs and scripts/bench-edge; run as
//   node scripts/workerd-config.mjs DIR PORT NAME=value… → prints DIR/edge.capnp
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export function writeWorkerdConfig(dir, port, vars) {
  mkdirSync(dir, { recursive: true });
  for (const file of ["worker.mjs", "index_bg.wasm"]) {
    copyFileSync(join(ROOT, "edge/build", file), join(dir, file));
  }
  const bindings = [
    ...Object.entries(vars).map(([key, value]) => `(name = ${JSON.stringify(key)}, text = ${JSON.stringify(value)})`),
    // The rate limiter's Durable Objects, kept in memory (a local workerd has no durable storage).
    `(name = "RATE_LIMITER", durableObjectNamespace = "RateLimiter")`,
  ].join(", ");
  const config = join(dir, "edge.capnp");
  writeFileSync(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edgeWorker),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "edge")],
);
const edgeWorker :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [${bindings}],
  durableObjectNamespaces = [(className = "RateLimiter", uniqueKey = "edgebrain-rate-limiter", enableSql = true)],
  durableObjectStorage = (inMemory = void),
  globalOutbound = "loopback",
);
`,
  );
  return config;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, port, ...pairs] = process.argv.slice(2);
  if (!dir || !port) {
    console.error("usage: node scripts/workerd-config.mjs DIR PORT NAME=value…");
    process.exit(2);
  }
  const vars = Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
  console.log(writeWorkerdConfig(dir, Number(port), vars));
}
