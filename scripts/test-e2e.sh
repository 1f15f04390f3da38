#!/usr/bin/env bash
# End-to-end tests of the Python host (consul_lambda_sync.host) on a real Consul
# agent (built by scripts/install-consul.sh) and a moto server, both started by
# the tests on free loopback ports.
#
# Installs what it needs: a venv (${VENV:-<repo>/.venv}) with moto[server], boto3,
# requests, pytest and the package built from this tree (maturin), and Consul.
# Before the tests: ruff and mypy --strict on the host package
# (python/consul_lambda_sync/host), tests/e2e and examples/python, with the
# boto3 and requests type stubs.
#
# Usage: scripts/test-e2e.sh [--setup] [pytest args...]
#   --setup   only prepare the venv, the package and Consul (used by start-local.sh)
# Environment: VENV, PYTHON (for a new venv), SKIP_LINT=1 (tests only).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
venv="${VENV:-$repo/.venv}"
log() { printf 'test-e2e: %s\n' "$*" >&2; }

setup_only=false
if [[ "${1:-}" == "--setup" ]]; then
  setup_only=true
  shift
fi

# 1. The venv and the test dependencies.
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
log "installing moto[server], boto3, requests, pytest, maturin into $venv"
"$py" -m pip install -q --disable-pip-version-check \
  "moto[server]>=5,<6" "boto3>=1.28" "requests>=2.31" "pytest>=8" "maturin>=1.9,<2" >&2
if ! $setup_only; then
  log "installing ruff, mypy and the boto3/requests type stubs"
  "$py" -m pip install -q --disable-pip-version-check 'mypy>=2,<3' 'ruff>=0.17,<0.18' \
    'boto3-stubs[lambda,ssm,resourcegroupstaggingapi,sts,iam]' types-requests >&2
fi

# 2. The package from this tree: the Rust core as a wheel (cargo reuses its build
#    cache, so this is quick when scripts/test-python.sh already built it), with
#    the host's Python files.
log "building the consul-lambda-sync wheel"
wheel_dir="$repo/target/wheels/e2e"
rm -rf "$wheel_dir"
# Same interpreter as scripts/test-python.sh, so that cargo reuses its build.
(cd "$repo/bindings/python" \
  && "$venv/bin/maturin" build --release --interpreter "$py" --out "$wheel_dir" >&2)
wheel="$(ls "$wheel_dir"/consul_lambda_sync-*.whl | head -n1)"
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel" >&2
"$py" -c 'import consul_lambda_sync.host.cli, consul_lambda_sync as c; print("test-e2e: package", c.version())' >&2

# 3. Consul (compiled from its Go module once, then cached).
consul_bin="$("$repo/scripts/install-consul.sh")"
log "consul: $consul_bin"
export CONSUL_BIN="$consul_bin"

if $setup_only; then
  exit 0
fi

# 4. Lint and types: the host package (scripts/test-python.sh leaves it out),
#    the end-to-end tests and the Python example.
cd "$repo"
if [[ "${SKIP_LINT:-}" != 1 ]]; then
  pycfg="bindings/python/pyproject.toml"
  host="bindings/python/python/consul_lambda_sync/host"
  log "ruff check / ruff format --check"
  "$venv/bin/ruff" check --config "$pycfg" "$host" examples/python >&2
  "$venv/bin/ruff" check tests/e2e >&2 # tests/e2e/ruff.toml extends $pycfg
  "$venv/bin/ruff" format --check --config "$pycfg" "$host" examples/python tests/e2e >&2
  log "mypy --strict"
  (cd bindings/python && "$venv/bin/mypy" --strict python/consul_lambda_sync/host >&2)
  "$venv/bin/mypy" --config-file "$pycfg" --strict tests/e2e examples/python >&2
fi

# 5. The Lambda deployment package, which tests/e2e/test_package.py runs.
if [[ -z "${CLS_LAMBDA_ZIP:-}" ]]; then
  log "building the Lambda deployment package"
  CLS_LAMBDA_ZIP="$(VENV="$venv" "$repo/scripts/build-lambda-zip.sh" --out "$repo/target/lambda/e2e.zip")"
  export CLS_LAMBDA_ZIP
fi

# 6. The tests. Run from the repo root so that pytest does not pick up
#    bindings/python's configuration; never from an installed copy of the tests.
cd "$repo"
unset CONSUL_HTTP_ADDR CONSUL_HTTP_TOKEN CONSUL_HTTP_TOKEN_PATH CONSUL_CACERT CONSUL_CACERT_PATH \
  AWS_PROFILE AWS_ENDPOINT_URL 2>/dev/null || true
exec "$py" -m pytest tests/e2e -q -p no:cacheprovider "$@"
