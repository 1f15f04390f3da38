#!/usr/bin/env bash
# Build and test the Node.js binding on both of its backends:
#   bindings/node's npm packages, the native addon (release), the WebAssembly
#   build (scripts/build-wasm.sh), tsc --noEmit --strict on the typed usage file,
#   and the suite bindings/node/__test__/*.test.mjs twice: with the native addon
#   and with CONSUL_LAMBDA_SYNC_BACKEND=wasm.
# Needs Node.js (>= 20), npm, cargo and rustup; installs everything else.
# Works from any directory. Ends with one line "node: N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need npm addon wasm
cd "$repo/bindings/node"

log "tsc --noEmit --strict"
npx --no-install tsc --noEmit --strict -p __test__/tsconfig.json

logs="$(mktemp -d)"
at_exit 'rm -rf "$logs"'
for backend in native wasm; do
  log "test suite, backend $backend"
  status=0
  CONSUL_LAMBDA_SYNC_BACKEND="$backend" node --test --test-reporter=tap __test__/*.test.mjs \
    | tee "$logs/$backend.tap" || status=$?
  # shellcheck disable=SC2046
  count "backend $backend" $(tap_counts "$logs/$backend.tap") "$status"
done
report node
