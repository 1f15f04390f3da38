#!/usr/bin/env bash
# End-to-end tests of the Python host (consul_lambda_sync.host) on a real Consul
# agent (built by scripts/install-consul.sh) and a moto server, both started by
# the tests on free loopback ports (cls_support, tests/support).
#
# Installs what it needs (scripts/lib.sh): the venv ${VENV:-<repo>/.venv} with
# moto[server], boto3, requests, pytest and the package built from this tree
# (maturin), and Consul. Before the tests: ruff and mypy --strict on the host
# package (python/consul_lambda_sync/host), tests/e2e and examples/python, with
# the boto3 and requests type stubs.
#
# Usage: scripts/test-e2e.sh [pytest args...]
# Environment: VENV, PYTHON (for a new venv), SKIP_LINT=1 (tests only),
# CLS_LAMBDA_ZIP (a Lambda zip built already).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need package consul

# Lint and types: the host package (scripts/test-python.sh leaves it out), the
# end-to-end tests and the Python example.
cd "$repo"
if [[ "${SKIP_LINT:-}" != 1 ]]; then
  need lint
  pycfg="bindings/python/pyproject.toml"
  host="bindings/python/python/consul_lambda_sync/host"
  log "ruff check / ruff format --check"
  "$VENV/bin/ruff" check --config "$pycfg" "$host" examples/python >&2
  "$VENV/bin/ruff" check tests/e2e >&2 # tests/e2e/ruff.toml extends $pycfg
  "$VENV/bin/ruff" format --check --config "$pycfg" "$host" examples/python tests/e2e >&2
  log "mypy --strict"
  (cd bindings/python && "$VENV/bin/mypy" --strict python/consul_lambda_sync/host >&2)
  "$VENV/bin/mypy" --config-file "$pycfg" --strict tests/e2e examples/python >&2
fi

# The Lambda deployment package, which tests/e2e/test_package.py runs.
if [[ -z "${CLS_LAMBDA_ZIP:-}" ]]; then
  CLS_LAMBDA_ZIP="$(lambda_zip_for_tests --fresh)"
  export CLS_LAMBDA_ZIP
fi

# The tests. Run from the repo root so that pytest does not pick up
# bindings/python's configuration; never from an installed copy of the tests.
no_outside_servers
"$py" -m pytest tests/e2e -q -p no:cacheprovider "$@"
