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

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg="$repo/bindings/python"
venv="${VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
wheels="$repo/target/wheels"

stage() { printf '\n==> %s\n' "$*"; }

stage "venv $venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
"$py" --version
"$py" -m pip install --quiet --disable-pip-version-check --upgrade \
  'maturin>=1.9,<2' 'pytest>=9,<10' 'mypy>=2,<3' 'ruff>=0.17,<0.18'

stage "maturin build --release (wheel)"
mkdir -p "$wheels"
rm -f "$wheels"/consul_lambda_sync-*.whl
(cd "$pkg" && "$venv/bin/maturin" build --release --interpreter "$py" --out "$wheels")
wheel=$(ls "$wheels"/consul_lambda_sync-*.whl)
size=$(wc -c <"$wheel")
printf 'wheel: %s (%s bytes, %s KiB)\n' "$(basename "$wheel")" "$size" "$((size / 1024))"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

# The host (python/consul_lambda_sync/host) is checked by its own suite.
cd "$pkg"
stage "ruff check"
"$venv/bin/ruff" check python/consul_lambda_sync tests bench \
  --extend-exclude python/consul_lambda_sync/host

stage "mypy --strict"
"$venv/bin/mypy" --strict python/consul_lambda_sync tests/typed_usage.py \
  --exclude 'consul_lambda_sync/host/'

stage "stubtest consul_lambda_sync._native (against the installed wheel)"
# Run outside the source tree so the installed package, not python/, is imported.
(cd "$repo/target" && "$py" -m mypy.stubtest consul_lambda_sync._native)

stage "pytest bindings/python/tests"
# Outside python/ too: the tests import the installed wheel.
# shellcheck disable=SC2086
"$py" -m pytest "$pkg/tests" -q -p no:cacheprovider ${PYTEST_ARGS:-}
