#!/usr/bin/env bash
# CI-sized resilience and scale checks, on a real Consul dev agent and moto:
#  1. tests/faults: faults injected by the recording proxy (5xx, 429, connection
#     resets, lost responses, latency, persistent failures); see RELIABILITY.md.
#  2. a 200-function full-sync benchmark of ours that FAILS on a count regression
#     (cold/churn writes above the minimum, steady writes != 0, steady reads over
#     the bound, any state not converged after one sync). Never on time.
# Installs what it needs via scripts/test-e2e.sh --setup; lints bench/ and
# tests/faults (ruff, mypy --strict) unless SKIP_LINT=1.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
venv="${VENV:-$repo/.venv}"
py="$venv/bin/python"
log() { printf 'test-faults: %s\n' "$*" >&2; }
start=$SECONDS

bash "$repo/scripts/test-e2e.sh" --setup
CONSUL_BIN="$("$repo/scripts/install-consul.sh")"
export CONSUL_BIN
cd "$repo"
unset CONSUL_HTTP_ADDR CONSUL_HTTP_TOKEN CONSUL_HTTP_TOKEN_PATH CONSUL_CACERT CONSUL_CACERT_PATH \
  AWS_PROFILE AWS_ENDPOINT_URL 2>/dev/null || true

if [[ "${SKIP_LINT:-}" != 1 ]]; then
  "$py" -m pip install -q --disable-pip-version-check 'mypy>=2,<3' 'ruff>=0.17,<0.18' \
    'boto3-stubs[lambda,resourcegroupstaggingapi]' types-requests >&2
  log "ruff, mypy --strict (bench, tests/faults)"
  "$venv/bin/ruff" check bench tests/faults >&2
  "$venv/bin/ruff" format --check --config bindings/python/pyproject.toml bench tests/faults >&2
  "$venv/bin/mypy" --config-file bindings/python/pyproject.toml --strict bench tests/faults >&2
  (cd bench/proxy && GOTOOLCHAIN=local go vet . >&2)
fi

log "fault tests"
"$py" -m pytest tests/faults -q -p no:cacheprovider
log "200-function benchmark with count checks"
"$py" bench/run.py --functions 200 --impl ours --check >/dev/null
log "done in $((SECONDS - start))s"
