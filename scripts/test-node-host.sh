#!/usr/bin/env bash
# Tests the Node host and the CDK support of the npm package (issue 6):
#   1. tsc --noEmit --strict on bindings/node/cdk-test/typed-usage.ts against the
#      shipped host/ and cdk/ declarations (skipLibCheck off, so they are checked);
#   2. the CDK assertion tests (construct: resources, the exact event pattern,
#      least-privilege IAM, reserved concurrency, retries and the dead-letter
#      queue, VPC, Node.js or Python code from a built asset, props validated with
#      the core's codes) and the tag-checker Aspect tests;
#   3. the host unit tests (fakes: retries, TLS, incomplete inventory, ordering...);
#   4. every shared scenario of tests/e2e/scenarios/*.json through the Node
#      Lambda handler against a real consul agent (ACLs, least-privilege token)
#      and a moto server, both started by the tests on free ports; with the
#      native addon, and again with the WebAssembly backend;
#   5. examples/cdk-app: `cdk synth` succeeds (env-agnostic, no AWS account, no
#      network), and the bad-tag variant fails with exactly one error naming the
#      function, the tag and the fix.
#
# Installs what it needs (scripts/lib.sh `need`): npm ci in bindings/node (when
# its lock changed), the native addon (npm run build) and the WebAssembly build
# (scripts/build-wasm.sh), the venv ${VENV:-<repo>/.venv} with moto[server] and
# cls_support, whose `python -m cls_support serve` runs the servers
# (host-test/servers.mjs), consul via scripts/install-consul.sh, and the example
# app's packages (npm ci, from the npm cache when it can).
# Needs node (>= 20), npm, python3, cargo, go (first consul build only).
# Works from any directory. Ends with one line "node-host: N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
node_dir="$root/bindings/node"
example_dir="$root/examples/cdk-app"
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

stage "tsc --noEmit --strict cdk-test/typed-usage.ts"
if npx --no-install tsc --noEmit --strict -p cdk-test/tsconfig.json >&2; then
  ok "tsc --strict on cdk-test/typed-usage.ts (host and cdk declarations)"
else
  not_ok "tsc --strict on cdk-test/typed-usage.ts"
fi
log "($((SECONDS - stage_start)) s) done"

# Runs one node:test suite (TAP), adds its counts.
suite() {
  local name="$1"
  shift
  local tap="$work/$name.tap"
  local rc=0
  printf '\n==> %s\n' "node --test $name" >&2
  node --test --test-reporter=tap "$@" >"$tap" 2>&1 || rc=$?
  local p f
  read -r p f < <(tap_counts "$tap")
  if [[ "$rc" -ne 0 || "$f" -ne 0 || "$p" -eq 0 ]]; then
    # The failing tests, with their diagnostics.
    grep -n -B2 -A40 '^ *not ok ' "$tap" | head -300 >&2 || tail -60 "$tap" >&2
  fi
  count "suite $name ($((SECONDS - stage_start)) s)" "$p" "$f" "$rc"
  stage_start=$SECONDS
}

stage_start=$SECONDS
suite cdk cdk-test/construct.test.mjs cdk-test/aspect.test.mjs
suite host-unit host-test/host.test.mjs
CONSUL_LAMBDA_SYNC_BACKEND=native suite e2e-native host-test/e2e.test.mjs
CONSUL_LAMBDA_SYNC_BACKEND=wasm suite e2e-wasm host-test/e2e.test.mjs

printf '\n==> %s\n' "examples/cdk-app" >&2
cd "$example_dir"
# consul-lambda-sync is a file: dependency installed as a copy (.npmrc
# install-links), so every run reinstalls it from bindings/node: npm ci.
if npm ci --prefer-offline --no-audit --no-fund >"$work/example-npm.log" 2>&1; then
  log "npm ci: $(tail -1 "$work/example-npm.log")"
else
  log "npm ci failed (package-lock.json out of date?); npm install instead:"
  tail -5 "$work/example-npm.log" >&2
  npm install --prefer-offline --no-audit --no-fund >&2
fi
rm -rf cdk.out

synth_rc=0
npx --no-install cdk synth --no-notices -q >"$work/synth.out" 2>"$work/synth.err" || synth_rc=$?
if [[ "$synth_rc" -eq 0 ]]; then
  ok "examples/cdk-app: cdk synth"
else
  cat "$work/synth.err" >&2
  not_ok "examples/cdk-app: cdk synth exited $synth_rc"
fi
if [[ "$synth_rc" -eq 0 ]] && node - "$example_dir/cdk.out" <<'EOF' >&2; then
// The synthesised example: env-agnostic, the registrator and its parts, and no annotation.
const fs = require('node:fs');
const path = require('node:path');
const out = process.argv[2];
const t = JSON.parse(fs.readFileSync(path.join(out, 'ConsulLambdaExample.template.json'), 'utf8'));
const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
const stack = manifest.artifacts.ConsulLambdaExample;
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };
check(stack.environment === 'aws://unknown-account/unknown-region', `env-agnostic stack (got ${stack.environment})`);
const of = (type) => Object.values(t.Resources).filter((r) => r.Type === type);
const fns = of('AWS::Lambda::Function');
const reg = fns.find((f) => f.Properties.Handler === 'host/index.handler');
check(fns.length === 3, `3 functions (got ${fns.length})`);
check(reg && reg.Properties.ReservedConcurrentExecutions === 1, 'registrator with reserved concurrency 1');
check(reg && reg.Properties.Environment.Variables.CONSUL_HTTP_ADDR === 'https://consul.internal.example.com:8501', 'CONSUL_HTTP_ADDR');
const rules = of('AWS::Events::Rule');
check(rules.length === 2, `2 rules (got ${rules.length})`);
check(rules.some((r) => r.Properties.ScheduleExpression === 'rate(5 minutes)'), 'schedule rate(5 minutes)');
check(rules.some((r) => r.Properties.EventPattern && r.Properties.EventPattern.source[0] === 'aws.lambda'), 'Lambda API rule');
check(of('AWS::SQS::Queue').length === 1, 'a dead-letter queue');
check(of('AWS::Lambda::EventInvokeConfig').length === 1, 'async invoke config with the on-failure destination');
const messages = Object.values(stack.metadata || {}).flat().filter((m) => /error|warn/.test(m.type));
check(messages.length === 0, `no error or warning annotation (got ${JSON.stringify(messages)})`);
if (problems.length) {
  console.error(`example template: ${problems.join('; ')}`);
  process.exit(1);
}
console.error('example template: env-agnostic; registrator, 2 rules, dead-letter queue, no annotation');
EOF
  ok "examples/cdk-app: the synthesised template"
else
  not_ok "examples/cdk-app: the synthesised template"
fi

bad_rc=0
npx --no-install cdk synth --no-notices -q --app 'node bad-tag.mjs' -o "$work/bad.out" >"$work/bad.stdout" 2>"$work/bad.err" || bad_rc=$?
# The messages of the run, without npm's own warnings.
grep -v '^npm warn' "$work/bad.err" >"$work/bad.msgs" || true
errors="$(grep -c '^ERROR' "$work/bad.msgs" || true)"
line="$(grep '^ERROR' "$work/bad.msgs" | head -1)"
if [[ "$bad_rc" -ne 0 && "$errors" -eq 1 ]] \
  && [[ "$line" == *"function ConsulLambdaExample/Orders (orders)"* ]] \
  && [[ "$line" == *'tag serverless.consul.hashicorp.com/v1alpha1/lambda/invocation-mode="async"'* ]] \
  && [[ "$line" == *"[invalid_invocation_mode]"* ]] \
  && [[ "$line" == *"Fix: set serverless.consul.hashicorp.com/v1alpha1/lambda/invocation-mode to SYNCHRONOUS"* ]]; then
  ok "examples/cdk-app: bad-tag.mjs fails synth with one error naming the function, the tag and the fix"
  log "  $line"
else
  cat "$work/bad.msgs" >&2
  not_ok "examples/cdk-app: bad-tag.mjs (exit $bad_rc, $errors error lines; want a failure with exactly one)"
fi
rm -rf cdk.out
log "($((SECONDS - stage_start)) s) done"

log "total $((SECONDS - started)) s"
report node-host
