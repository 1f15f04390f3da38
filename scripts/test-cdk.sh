#!/usr/bin/env bash
# Tests the CDK construct package (bindings/cdk, jsii) in every language built:
#
#   1. scripts/build-cdk.sh: the core's packed artefacts (dist/, scripts/build-packages.sh)
#      into consul-lambda-sync-cdk: npm tarball, Python wheel, Maven repository
#   2. tsc --strict of the construct's typed usage against the compiled package (and its
#      assertion tests, bindings/cdk/test, when ts is not tested: ts runs them on the tarball)
#   3. TypeScript/JavaScript: examples/cdk-app with the npm TARBALL installed into a
#      clean copy; the assertion tests again against that installed copy; then
#      `cdk synth` with NO NETWORK (unshare -rn: a network namespace without
#      interfaces), the template checked (tests/cdk/check-template.mjs: reserved
#      concurrency 1, the dead-letter queue, least-privilege IAM — no Lambda action that
#      reads code or environment, Parameter Store writes only under the extension-data
#      prefix and never on the token or CA parameters —, the schedule, the CloudTrail
#      rule, alarms; a function's mesh access: the extension layer, its variables, read
#      access to exactly its parameter), the role's policies linted by parliament
#      (tests/cdk/lint_iam.py), and the bad-tag variant failing with one error
#   4. Python: examples/cdk-python with the WHEEL in a clean venv; synth offline; checks
#   5. Java: examples/cdk-java against the Maven repository; synth offline; checks
#   6. Go, only when asked (scripts/test-cdk.sh go): examples/cdk-go against the generated
#      module; synth offline; checks
#
# The tarball's Python Lambda zips hold only what the host imports (tests/packages/check_lambda_zip.py).
# The ts, python and java cloud assemblies are kept in target/cdk/synth/<app> for
# scripts/test-deploy.sh, which deploys them.
# What it installs is cached: npm in ~/.npm, pip in ~/.cache/pip (and the example's venv
# in target/cdk/venv-python, parliament's in target/cdk/venv-iam-lint), Maven in ~/.m2
# (only the construct's own artefact is purged from ~/.m2 each run).
# Usage: scripts/test-cdk.sh [ts] [python] [java] [go]   (default: ts python java)
# Environment: DIST (default <repo>/dist, the core's artefacts built there first when
# unset), CDK_NO_BUILD=1 to test the construct packages already in DIST.
# Ends with one line "cdk: N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=1
langs=("$@")
[[ ${#langs[@]} -eq 0 ]] && langs=(ts python java)
want() { local l; for l in "${langs[@]}"; do [[ "$l" == "$1" ]] && return 0; done; return 1; }
version="$(awk -F'"' '/^version = / { print $2; exit }' "$root/Cargo.toml")"
start=$SECONDS
timing=()
mark() { timing+=("$1 $((SECONDS - $2))s"); }

work="$(mktemp -d)"
if [[ -n "${KEEP_WORK:-}" ]]; then log "keeping $work"; else at_exit 'rm -rf "$work"'; fi
check_template="$root/tests/cdk/check-template.mjs"
# The example apps' cloud assemblies are kept for scripts/test-deploy.sh (deployed into moto).
synth_keep="$root/target/cdk/synth"
keep_synth() { rm -rf "${synth_keep:?}/$1" && mkdir -p "$synth_keep" && cp -r "$2" "$synth_keep/$1"; }
check_annotations="$root/tests/cdk/check-annotations.mjs"

# offline CMD...: CMD in a new network namespace without interfaces (as an unprivileged
# user namespace's root when not root), so that nothing it does can reach a network.
offline() {
  if unshare -n true 2>/dev/null; then unshare -n "$@"; else unshare -rn "$@"; fi
}
check "a network namespace without interfaces: only lo, which is down; no route anywhere" bash -c "$(declare -f offline)"'
  offline node -e "
const os = require(\"node:os\");
const up = Object.keys(os.networkInterfaces());
if (up.length) { console.error(\"interfaces: \" + up); process.exit(1); }
require(\"node:net\").connect(443, \"1.1.1.1\").on(\"error\", (e) => process.exit(e.code === \"ENETUNREACH\" ? 0 : 1)).on(\"connect\", () => process.exit(1));"'

# --- 1. build ------------------------------------------------------------------------
t0=$SECONDS
targets=(js)
want python && targets+=(python)
want java && targets+=(java)
want go && targets+=(go)
if [[ -z "${DIST:-}" ]]; then need packages; fi
dist="$(cd "${DIST:-$root/dist}" && pwd -P)"
if [[ -n "${CDK_NO_BUILD:-}" ]]; then
  log "CDK_NO_BUILD: testing the construct packages already in $dist"
else
  DIST="$dist" bash "$root/scripts/build-cdk.sh" "${targets[@]}"
fi
tgz="$dist/consul-lambda-sync-cdk-$version.tgz"
mark build "$t0"
check "npm tarball built ($(wc -c <"$tgz") bytes), not private, no dependencies, aws-cdk-lib and constructs peers" \
  node -e '
const { execFileSync } = require("node:child_process");
const pkg = JSON.parse(execFileSync("tar", ["-xzOf", process.argv[1], "package/package.json"]));
if (pkg.private || Object.keys(pkg.dependencies || {}).length || !pkg.peerDependencies["aws-cdk-lib"] || !pkg.peerDependencies.constructs) process.exit(1);
const files = execFileSync("tar", ["-tzf", process.argv[1]]).toString().split("\n");
for (const f of ["package/.jsii", "package/lib/index.js", "package/core/wasm/consul_lambda_sync_wasm_bg.wasm",
  "package/lambda/nodejs-arm64.zip", "package/lambda/nodejs-x86_64.zip", "package/lambda/python-arm64.zip", "package/lambda/python-x86_64.zip",
  "package/layer/consul-lambda-extension-x86_64.zip", "package/layer/consul-lambda-extension-arm64.zip"]) {
  if (!files.includes(f)) { console.error("missing " + f); process.exit(1); }
}
if (files.some((f) => f.endsWith(".node") || f.includes("node_modules/"))) { console.error("addon or node_modules in the tarball"); process.exit(1); }' "$tgz"
for arch in x86_64 arm64; do
  tar -xzOf "$tgz" "package/lambda/python-$arch.zip" >"$work/python-$arch.zip"
  check "the tarball's python-$arch.zip: only what the host imports (no requests, no boto3)" \
    python3 "$root/tests/packages/check_lambda_zip.py" "$work/python-$arch.zip"
done

# parliament lints each example's synthesized role (tests/cdk/lint_iam.py).
t0=$SECONDS
need iam_lint
lint_iam() { "$IAM_LINT_PYTHON" "$root/tests/cdk/lint_iam.py" "$1"; }
mark iam-lint-install "$t0"

# TAP counts of a node --test run.
node_suite() {
  local name="$1" tap="$work/$RANDOM.tap" rc=0
  shift
  "$@" >"$tap" 2>&1 || rc=$?
  read -r p f < <(tap_counts "$tap")
  if [[ "$rc" -ne 0 || "$f" -ne 0 ]]; then grep -n -A30 '^ *not ok ' "$tap" | head -120 >&2 || tail -40 "$tap" >&2; fi
  count "$name" "$p" "$f" "$rc"
}

# --- 2. unit tests --------------------------------------------------------------------
t0=$SECONDS
# (With ts, the same tests run against the installed tarball below, once.)
if ! want ts; then
  node_suite "construct tests (bindings/cdk, compiled)" node --test --test-reporter=tap "$root"/bindings/cdk/test/*.test.mjs
fi
check "tsc --strict: bindings/cdk/test/typed-usage.ts against lib/*.d.ts" \
  bash -c 'cd "$1/bindings/cdk" && npx --no-install tsc -p test/tsconfig.json' _ "$root"
mark unit "$t0"

# --- 3. TypeScript / JavaScript --------------------------------------------------------
if want ts; then
  t0=$SECONDS
  app="$work/cdk-app"
  mkdir -p "$app"
  (cd "$root/examples/cdk-app" && tar --exclude=./node_modules --exclude=./cdk.out --exclude=./.npmrc --exclude=./package-lock.json -cf - .) | tar -xf - -C "$app"
  node -e '
const fs = require("node:fs"); const p = process.argv[1] + "/package.json";
const d = JSON.parse(fs.readFileSync(p)); d.dependencies["consul-lambda-sync-cdk"] = "file:" + process.argv[2];
fs.writeFileSync(p, JSON.stringify(d, null, 2));' "$app" "$tgz"
  log "examples/cdk-app: npm install (the tarball; aws-cdk-lib, constructs and the CLI from ~/.npm)"
  (cd "$app" && npm install --prefer-offline --no-package-lock >&2)
  installed="$app/node_modules/consul-lambda-sync-cdk"
  check "ts: installed from the tarball (a copy), with no AWS SDK in the project" \
    bash -c 'test -f "$1/.jsii" -a ! -L "$1" -a ! -e "$2/node_modules/@aws-sdk"' _ "$installed" "$app"
  CONSUL_LAMBDA_SYNC_CDK_DIR="$installed" node_suite "ts: construct tests against the installed tarball" \
    node --test --test-reporter=tap "$root"/bindings/cdk/test/*.test.mjs
  rc=0
  (cd "$app" && offline npx --no-install cdk synth --no-notices -q -o cdk.out) >"$work/ts-synth.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -30 "$work/ts-synth.log" >&2; fi
  check "ts: cdk synth with no network" test "$rc" -eq 0
  keep_synth ts "$app/cdk.out"
  check "ts: the template" node "$check_template" "$app/cdk.out/ConsulLambdaExample.template.json" \
    --schedule 'rate(5 minutes)' --token /consul/lambda-registrator/token --ca /consul/lambda-registrator/ca-cert \
    --ext /consul/lambda-extension-data \
    --mesh checkout --mesh-arch arm64 --mesh-upstreams orders-api:1234,ledger.finance:1235:dc2
  check "ts: parliament finds nothing in the role's policies" lint_iam "$app/cdk.out/ConsulLambdaExample.template.json"
  check "ts: no error annotation" node "$check_annotations" "$app/cdk.out" ConsulLambdaExample 0
  rc=0
  (cd "$app" && offline npx --no-install cdk synth --no-notices -q --app 'node bad-tag.mjs' -o bad.out) >"$work/ts-bad.log" 2>&1 || rc=$?
  check "ts: bad-tag.mjs fails synth with one error naming the function, the tag and the fix" bash -c '
    [[ $1 -ne 0 ]] || exit 1
    n=$(grep -c "^ERROR" "$2" || true); [[ $n -eq 1 ]] || { cat "$2" >&2; exit 1; }
    line=$(grep "^ERROR" "$2")
    [[ "$line" == *"function ConsulLambdaExample/Orders (orders)"* && "$line" == *"invocation-mode=\"async\""* && "$line" == *"[invalid_invocation_mode]"* && "$line" == *"Fix: set "* ]]' _ "$rc" "$work/ts-bad.log"
  mark ts "$t0"
fi

# --- 4. Python -------------------------------------------------------------------------
if want python; then
  t0=$SECONDS
  whl="$(ls "$dist"/consul_lambda_sync_cdk-"$version"-py3-none-any.whl)"
  # aws-cdk-lib and constructs stay in a venv under target/ between runs; the
  # construct's wheel is reinstalled from dist/ every time.
  venv="$root/target/cdk/venv-python"
  log "examples/cdk-python: venv $venv with $(basename "$whl") ($(wc -c <"$whl") bytes) and aws-cdk-lib (pip cache)"
  venv_ensure --clean "$venv" -r <(grep -v '^consul-lambda-sync-cdk' "$root/examples/cdk-python/requirements.txt")
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$whl" >&2
  check "python: the wheel is installed from dist/" bash -c \
    '"$1/bin/python" -c "import consul_lambda_sync_cdk, sys; sys.exit(0 if \"site-packages\" in consul_lambda_sync_cdk.__file__ else 1)"' _ "$venv"
  out="$work/py.out"
  rc=0
  (cd "$root/examples/cdk-python" && CDK_OUTDIR="$out" offline "$venv/bin/python" app.py) >"$work/py.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -30 "$work/py.log" >&2; fi
  check "python: synth with no network" test "$rc" -eq 0
  keep_synth python "$out"
  check "python: the template" node "$check_template" "$out/ConsulLambdaPython.template.json" \
    --schedule 'rate(5 minutes)' --token /consul/lambda-registrator/token --ca /consul/lambda-registrator/ca-cert \
    --ext /consul/lambda-extension-data \
    --mesh checkout --mesh-arch x86_64 --mesh-upstreams orders-api:1234,api.svc.east.peer:1236
  check "python: parliament finds nothing in the role's policies" lint_iam "$out/ConsulLambdaPython.template.json"
  check "python: no error annotation" node "$check_annotations" "$out" ConsulLambdaPython 0
  check "python: terminating gateway, exported services and the dashboard" node -e '
const t = require(process.argv[1]); const r = Object.values(t.Resources);
const env = r.find((x) => x.Type === "AWS::Lambda::Function" && /consul-lambda-sync/.test(x.Properties.Description || "")).Properties.Environment.Variables;
if (env.TERMINATING_GATEWAY_NAME !== "lambda-gateway" || env.EXPORTED_SERVICES_PEERS !== "east") process.exit(1);
if (!r.some((x) => x.Type === "AWS::CloudWatch::Dashboard")) process.exit(1);' "$out/ConsulLambdaPython.template.json"
  rc=0
  (cd "$root/examples/cdk-python" && ORDERS_INVOCATION_MODE=async CDK_OUTDIR="$work/py-bad.out" offline "$venv/bin/python" app.py) >"$work/py-bad.log" 2>&1 || rc=$?
  check "python: the tag checker (Aspect) reports the bad tag: one error naming the function, the tag and the fix" \
    node "$check_annotations" "$work/py-bad.out" ConsulLambdaPython 1 'function ConsulLambdaPython/Orders \(orders\)' \
    'invocation-mode="async"' '\[invalid_invocation_mode\]' 'Fix: set '
  rc=0
  offline "$venv/bin/python" -c '
import aws_cdk as cdk
from consul_lambda_sync_cdk import ConsulLambdaRegistrator, ConsulTags, ConsulTagOptions
stack = cdk.Stack(cdk.App(), "S")
try:
    ConsulLambdaRegistrator(stack, "R", consul_http_addr="consul:8500", page_size=500)
except Exception as e:
    msg = str(e)
    assert "[invalid_url] prop consulHttpAddr" in msg and "[out_of_range] prop pageSize" in msg, msg
else:
    raise SystemExit("no error for bad props")
try:
    ConsulTags.of(ConsulTagOptions(aliases=["Not Valid!"]))
except Exception as e:
    assert "alias" in str(e).lower(), str(e)
else:
    raise SystemExit("no error for a bad alias")
print("ok")' >"$work/py-errors.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -20 "$work/py-errors.log" >&2; fi
  check "python: bad props and bad tag options raise the core's errors (codes, props)" test "$rc" -eq 0
  mark python "$t0"
fi

# --- 5. Java ---------------------------------------------------------------------------
if want java; then
  t0=$SECONDS
  if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
    log "java: installing Maven and a JDK (apt)"
    (apt-get install -y -qq maven default-jdk-headless || { apt-get update -qq && apt-get install -y -qq maven default-jdk-headless; }) >&2
  fi
  repo_dir="$dist/consul-lambda-sync-cdk-maven"
  jar="$(ls "$repo_dir"/com/example/consul-lambda-sync/consul-lambda-sync-cdk/"$version"/consul-lambda-sync-cdk-"$version".jar)"
  # A release version is never fetched again once in ~/.m2: drop the previous build's copy.
  rm -rf "${HOME}/.m2/repository/com/example/consul-lambda-sync"
  japp="$work/cdk-java"
  cp -r "$root/examples/cdk-java" "$japp"
  rm -rf "$japp/target"
  log "examples/cdk-java: mvn compile ($(basename "$jar") $(wc -c <"$jar") bytes; aws-cdk-lib from ~/.m2)"
  rc=0
  (cd "$japp" && mvn -q -B -Dconsul.lambda.sync.repo="file://$repo_dir" compile dependency:build-classpath \
    -Dmdep.outputFile=cp.txt) >"$work/mvn.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -40 "$work/mvn.log" >&2; fi
  check "java: mvn compile against the Maven repository in dist/" test "$rc" -eq 0
  run_java() { (cd "$japp" && offline java -cp "target/classes:$(cat cp.txt)" com.example.consullambdasync.ConsulLambdaApp); }
  out="$work/java.out"
  rc=0
  CDK_OUTDIR="$out" run_java >"$work/java.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -30 "$work/java.log" >&2; fi
  check "java: synth with no network" test "$rc" -eq 0
  keep_synth java "$out"
  check "java: the template (Python host on x86_64)" node "$check_template" "$out/ConsulLambdaJava.template.json" \
    --runtime python --arch x86_64 --schedule 'rate(15 minutes)' --token /consul/lambda-registrator/token \
    --ca /consul/lambda-registrator/ca-cert \
    --mesh checkout --mesh-arch arm64 --mesh-upstreams orders-api:1234,ledger.finance:1235:dc2 \
    --mesh-prefix /consul/lambda-extension-data
  check "java: parliament finds nothing in the role's policies" lint_iam "$out/ConsulLambdaJava.template.json"
  check "java: no error annotation" node "$check_annotations" "$out" ConsulLambdaJava 0
  rc=0
  ORDERS_INVOCATION_MODE=async CDK_OUTDIR="$work/java-bad.out" run_java >"$work/java-bad.log" 2>&1 || rc=$?
  check "java: the tag checker reports the bad tag: one error naming the function, the tag and the fix" \
    node "$check_annotations" "$work/java-bad.out" ConsulLambdaJava 1 'function ConsulLambdaJava/Orders \(orders\)' \
    'invocation-mode="async"' '\[invalid_invocation_mode\]'
  mark java "$t0"
fi

# --- 6. Go (opt-in: scripts/test-cdk.sh go; jsii-pacmak's first Go build compiles aws-cdk-go) ----
if want go; then
  t0=$SECONDS
  gapp="$work/cdk-go"
  cp -r "$root/examples/cdk-go" "$gapp"
  sed -i "s#=> ../../dist/consul-lambda-sync-cdk-go/#=> $dist/consul-lambda-sync-cdk-go/#" "$gapp/go.mod"
  rc=0
  (cd "$gapp" && go build -o app .) >"$work/go-build.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then tail -30 "$work/go-build.log" >&2; fi
  check "go: go build against the generated module in dist/" test "$rc" -eq 0
  rc=0
  (cd "$gapp" && CDK_OUTDIR="$work/go.out" offline ./app) >"$work/go.log" 2>&1 || rc=$?
  check "go: synth with no network" test "$rc" -eq 0
  check "go: the template" node "$check_template" "$work/go.out/ConsulLambdaGo.template.json" \
    --schedule 'rate(20 minutes)' --token /consul/lambda-registrator/token --ca /consul/lambda-registrator/ca-cert
  (cd "$gapp" && ORDERS_INVOCATION_MODE=async CDK_OUTDIR="$work/go-bad.out" offline ./app) >/dev/null 2>&1 || true
  check "go: the tag checker reports the bad tag" node "$check_annotations" "$work/go-bad.out" ConsulLambdaGo 1 \
    'function ConsulLambdaGo/Orders \(orders\)' '\[invalid_invocation_mode\]'
  mark go "$t0"
fi

log "done in $((SECONDS - start))s (${timing[*]})"
report cdk
