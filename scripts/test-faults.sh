#!/usr/bin/env bash
# CI-sized resilience and scale checks, on a real Consul dev agent and moto:
#  1. tests/faults: faults injected by the recording proxy (5xx, 429, connection
#     resets, lost responses, latency, persistent failures); cluster faults
#     (test_cluster.py: a three-server cluster and a client agent, all with data
#     dirs, 500 functions; the leader killed, a server and the agent restarted
#     mid-sync, timed by the proxy's write counts); see RELIABILITY.md;
#     the transcript tests: every shared e2e scenario and fault runs through the
#     Python host and the Node host (a fresh node process, the native addon) with
#     the same seed must send the same requests and reach the same result, and the
#     service-defaults write race (another writer between our read and our
#     create-only write) on both hosts; and tests/support: the test-support
#     package itself (the serve command, a three-server Consul cluster losing its
#     leader, the proxy's transcript).
#  2. a 200-function full-sync benchmark of both our hosts (Python and Node) that
#     FAILS on a count regression (Consul writes other than exactly
#     ceil(catalog operations/128) transactions + one per service-defaults entry,
#     so steady writes != 0; any AWS write; steady reads over the bound; any state
#     not converged after one sync). Never on time.
# Installs what it needs (scripts/lib.sh); lints bench/, tests/faults and
# tests/support (ruff, mypy --strict, go vet) unless SKIP_LINT=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start=$SECONDS

need package consul npm addon # the Node host of the transcript tests and the benchmark
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

log "fault tests (dev agent; cluster; transcripts), test-support tests"
"$py" -m pytest tests/faults tests/support -q -p no:cacheprovider --durations=5
log "200-function benchmark with count checks (Python and Node hosts)"
"$py" bench/run.py --functions 200 --impl python node --check >/dev/null
log "done in $((SECONDS - start))s"
