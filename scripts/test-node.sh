#!/usr/bin/env bash
# Build and test the Node.js binding on both of its backends:
#   npm ci (bindings/node), the native addon (release), the WebAssembly build
#   (scripts/build-wasm.sh), tsc --noEmit --strict on the typed usage file, and
#   the suite bindings/node/__test__/*.test.mjs twice: with the native addon and
#   with CONSUL_LAMBDA_SYNC_BACKEND=wasm.
# Needs Node.js (>= 18), npm, cargo and rustup; installs everything else.
# Works from any directory. Ends with one line "node: N passed, N failed".
set -euo pipefail

log() { printf 'test-node: %s\n' "$*" >&2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
node_dir="$root/bindings/node"
cd "$node_dir"

log "npm ci"
npm ci --no-audit --no-fund

log "native addon (napi build --release)"
npm run --silent build

log "WebAssembly build"
bash "$root/scripts/build-wasm.sh"

log "tsc --noEmit --strict"
npx --no-install tsc --noEmit --strict -p __test__/tsconfig.json

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
status=0
passed=0
failed=0
for backend in native wasm; do
  log "test suite, backend $backend"
  if ! CONSUL_LAMBDA_SYNC_BACKEND="$backend" node --test --test-reporter=tap __test__/*.test.mjs \
    | tee "$logs/$backend.tap"; then
    status=1
  fi
  p="$(awk '$1 == "#" && $2 == "pass" { n = $3 } END { print n + 0 }' "$logs/$backend.tap")"
  f="$(awk '$1 == "#" && $2 == "fail" { n = $3 } END { print n + 0 }' "$logs/$backend.tap")"
  log "backend $backend: $p passed, $f failed"
  if [[ "$p" -eq 0 ]]; then
    log "backend $backend ran no test"
    status=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
done

echo "node: $passed passed, $failed failed"
exit "$status"
