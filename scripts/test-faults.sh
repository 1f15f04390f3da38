#!/usr/bin/env bash
# CI-sized resilience and scale checks, on a real Consul dev agent and moto:
#  1. tests/faults: faults injected by the recording proxy (5xx, 429, connection
#     resets, lost responses, latency, persistent failures); cluster faults
#     (test_cluster.py: a three-server cluster and a client agent, all with data
#     dirs, 500 functions; the leader killed, a server and the agent restarted
#     mid-sync, timed by the proxy's write counts); see RELIABILITY.md;
#     and tests/support: the test-support package itself (the serve command, a
#     three-server Consul cluster losing its leader).
#  2. a 200-function full-sync benchmark of ours that FAILS on a count regression
#     (cold/churn writes above the minimum, steady writes != 0, steady reads over
#     the bound, any state not converged after one sync). Never on time.
# Installs what it needs (scripts/lib.sh); lints bench/, tests/faults and
# tests/support (ruff, mypy --strict, go vet) unless SKIP_LINT=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start=$SECONDS

need package consul
cd "$repo"
no_outside_servers

if [[ "${SKIP_LINT:-}" != 1 ]]; then
  need lint
  log "ruff, mypy --strict (bench, tests/faults, tests/support), go vet"
  "$VENV/bin/ruff" check bench tests/faults tests/support >&2
  "$VENV/bin/ruff" format --check --config bindings/python/pyproject.toml bench tests/faults tests/support >&2
  "$VENV/bin/mypy" --config-file bindings/python/pyproject.toml --strict bench tests/faults tests/support >&2
  (cd tests/support/proxy && GOTOOLCHAIN=local go vet . >&2)
fi

log "fault tests (dev agent; cluster), test-support tests"
"$py" -m pytest tests/faults tests/support -q -p no:cacheprovider --durations=5
log "200-function benchmark with count checks"
"$py" bench/run.py --functions 200 --impl ours --check >/dev/null
log "done in $((SECONDS - start))s"
