#!/usr/bin/env bash
# Builds the Python binding's wheel and checks what the wheel installs:
# ruff, mypy --strict (package and a typed usage file), stubtest of the
# extension module, then pytest (shared vectors, robustness, README quick start).
#
# Works from any directory on a fresh machine with python3 (3.10+ for the test
# tools; the wheel itself is abi3 for CPython 3.9+) and a Rust toolchain.
# Environment: VENV (default: <repo>/.venv), PYTHON (default: python3),
# PYTEST_ARGS (extra pytest arguments).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pkg="$repo/bindings/python"

stage "venv $VENV, the wheel (maturin build --release)"
need package lint
"$py" --version
wheel="$(ls "$repo"/target/wheels/consul_lambda_sync-*.whl | head -n1)"
size=$(wc -c <"$wheel")
printf 'wheel: %s (%s bytes, %s KiB)\n' "$(basename "$wheel")" "$size" "$((size / 1024))"

# The host (python/consul_lambda_sync/host) is checked by its own suite.
cd "$pkg"
stage "ruff check"
"$VENV/bin/ruff" check python/consul_lambda_sync tests bench \
  --extend-exclude python/consul_lambda_sync/host

stage "mypy --strict"
"$VENV/bin/mypy" --strict python/consul_lambda_sync tests/typed_usage.py \
  --exclude 'consul_lambda_sync/host/'

stage "stubtest consul_lambda_sync._native (against the installed wheel)"
# Run outside the source tree so the installed package, not python/, is imported.
(cd "$repo/target" && "$py" -m mypy.stubtest consul_lambda_sync._native)

stage "pytest bindings/python/tests"
# Outside python/ too: the tests import the installed wheel.
# shellcheck disable=SC2086
"$py" -m pytest "$pkg/tests" -q -p no:cacheprovider ${PYTEST_ARGS:-}
