#!/usr/bin/env bash
# Builds the Lambda deployment package of the registrator (x86_64 or arm64): the
# consul-lambda-sync wheel (Rust core + consul_lambda_sync.host) installed with
# `pip install --target` and zipped, and nothing else: the host imports only the
# standard library (Consul over http.client) and boto3, which every Lambda Python
# runtime ships. --with-boto3 bundles boto3 and its dependencies anyway, at the
# versions and hashes of scripts/requirements/lambda-boto3.txt (pip --require-hashes;
# Python >= 3.10). tests/packages/check_lambda_zip.py checks what a zip holds.
#
# By default the wheel is manylinux2014 (glibc 2.17), built with zig (the ziglang
# package from PyPI, installed into the venv), so the zip runs on every Lambda
# Python runtime from python3.9 (Amazon Linux 2 and 2023). --native builds with
# the machine's own toolchain instead: the wheel then needs this machine's glibc
# (python3.12/python3.13 runtimes on Amazon Linux 2023 when built on glibc <= 2.34).
#
#   Handler:      consul_lambda_sync.host.handler.handler
#   Architecture: x86_64 (default) or arm64 (--arch arm64: Graviton; cross-built
#                 with zig, so it cannot be combined with --native)
#
# --wheel FILE packs an already built manylinux wheel of that architecture
# (scripts/build-packages.sh passes its own) instead of building one.
#
# Usage: scripts/build-lambda-zip.sh [--out FILE] [--python 3.12] [--with-boto3] [--native]
#                                    [--arch x86_64|arm64] [--wheel FILE]
# stdout: the path of the zip; stderr: progress and its size.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out="$repo/target/lambda/consul-lambda-sync.zip"
pyver="3.12"
with_boto3=false
native=false
arch=x86_64
wheel_in=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --python) pyver="$2"; shift 2 ;;
    --with-boto3) with_boto3=true; shift ;;
    --native) native=true; shift ;;
    --arch) arch="$2"; shift 2 ;;
    --wheel) wheel_in="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "build-lambda-zip: unknown argument $1" >&2; exit 3 ;;
  esac
done
[[ "$out" = /* ]] || out="$PWD/$out"
case "$arch" in
  x86_64) rust_target=x86_64-unknown-linux-gnu; platform=manylinux2014_x86_64 ;;
  arm64 | aarch64) arch=arm64; rust_target=aarch64-unknown-linux-gnu; platform=manylinux2014_aarch64 ;;
  *) echo "build-lambda-zip: --arch must be x86_64 or arm64, not $arch" >&2; exit 3 ;;
esac
if $with_boto3 && [[ "$(printf '%s\n' "$pyver" 3.10 | sort -V | head -n 1)" != 3.10 ]]; then
  echo "build-lambda-zip: --with-boto3 needs --python 3.10 or later (scripts/requirements/lambda-boto3.txt is locked for it)" >&2
  exit 3
fi
if $native && [[ "$arch" != x86_64 || "$(uname -m)" != x86_64 ]]; then
  echo "build-lambda-zip: --native builds only for this machine's own architecture (x86_64)" >&2
  exit 3
fi
if [[ -n "$wheel_in" ]]; then
  [[ "$wheel_in" = /* ]] || wheel_in="$PWD/$wheel_in"
  [[ -f "$wheel_in" ]] || { echo "build-lambda-zip: no wheel $wheel_in" >&2; exit 3; }
fi

# boto3: the smoke test below imports the handler, and the Lambda runtime provides boto3.
venv_ensure "$VENV" "${REQ_BUILD[@]}" 'boto3>=1.28'
pip() { "$py" -m pip install -q --disable-pip-version-check "$@" >&2; }

work="$(mktemp -d)"
at_exit 'rm -rf "$work"'
if [[ -n "$wheel_in" ]]; then
  mkdir -p "$work/wheels"
  cp "$wheel_in" "$work/wheels/"
elif $native; then
  log "building the wheel (native toolchain)"
  (cd "$repo/bindings/python" \
    && "$VENV/bin/maturin" build --release --interpreter "$py" --out "$work/wheels" >&2)
else
  pip "${REQ_ZIG[@]}"
  rust_targets "$rust_target"
  log "building the manylinux2014 $arch wheel with zig"
  (cd "$repo/bindings/python" \
    && PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --zig \
      --compatibility manylinux2014 --target "$rust_target" \
      --interpreter "$py" --out "$work/wheels" >&2)
fi
wheel="$(ls "$work"/wheels/consul_lambda_sync-*.whl | head -n1)"
log "wheel $(basename "$wheel")"
case "$(basename "$wheel")" in
  *"_${rust_target%%-*}.whl") ;;
  *) echo "build-lambda-zip: $(basename "$wheel") is not a ${rust_target%%-*} wheel" >&2; exit 3 ;;
esac

pkg="$work/package"
if $native; then
  pip --target "$pkg" --no-deps "$wheel"
else
  # --platform lets pip install a wheel of another architecture than this machine's.
  pip --target "$pkg" --no-deps --platform "$platform" --implementation cp \
    --python-version "$pyver" --only-binary=:all: "$wheel"
fi
if $with_boto3; then
  log "bundling boto3: scripts/requirements/lambda-boto3.txt (pinned, --require-hashes)"
  pip --target "$pkg" --platform "$platform" --implementation cp --python-version "$pyver" \
    --only-binary=:all: --require-hashes -r "$repo/scripts/requirements/lambda-boto3.txt"
fi
rm -rf "$pkg/bin" # console scripts: of no use in Lambda
find "$pkg" -name '__pycache__' -type d -prune -exec rm -rf {} +

# Smoke test: the handler imports from the package directory alone (plus boto3,
# which the Lambda runtime provides). An arm64 package cannot load here; the
# architecture of its extension module is checked instead.
if [[ "$arch" == x86_64 ]]; then
  (cd "$work" && PYTHONPATH="$pkg" "$py" -c '
import consul_lambda_sync.host.handler as h, consul_lambda_sync as c, sys, boto3
assert h.__file__.startswith(sys.argv[1]), h.__file__
assert (sys.argv[2] == "true") == boto3.__file__.startswith(sys.argv[1]), boto3.__file__
print("build-lambda-zip: handler imports; core", c.version(), "boto3", boto3.__version__, file=sys.stderr)
' "$pkg" "$with_boto3")
else
  so="$(ls "$pkg"/consul_lambda_sync/_native*.so)"
  "$py" - "$so" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF", "not an ELF file"
machine = struct.unpack("<H", head[18:20])[0]
assert machine == 183, f"e_machine {machine}, not AArch64 (183)"
print("build-lambda-zip: extension module is AArch64 ELF", file=sys.stderr)
PY
fi
find "$pkg" -name '__pycache__' -type d -prune -exec rm -rf {} +

mkdir -p "$(dirname "$out")"
rm -f "$out"
(cd "$pkg" && "$py" -m zipfile -c "$out" ./*)
size=$(wc -c <"$out")
log "wrote $out ($size bytes, $((size / 1024)) KiB); handler consul_lambda_sync.host.handler.handler"
printf '%s\n' "$out"
