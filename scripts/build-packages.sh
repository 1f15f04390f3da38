#!/usr/bin/env bash
# Builds every distributable artefact into dist/:
#
#   consul-lambda-sync-<version>.tgz      npm package: native addons for
#                                         linux-x64-gnu and linux-arm64-gnu (glibc
#                                         2.17, cross-built with zig) and the
#                                         WebAssembly build as the fallback
#   consul_lambda_sync-<version>-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#   consul_lambda_sync-<version>-cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
#                                         Python wheels (CPython >= 3.9, glibc 2.17)
#   consul-lambda-sync-lambda-x86_64.zip  Lambda deployment packages (python3.12
#   consul-lambda-sync-lambda-arm64.zip   runtime, boto3 left out), from the wheels
#   SHA256SUMS                            their checksums
#
# Everything is built here for both architectures: rustup targets, zig from
# PyPI's ziglang package (through maturin --zig and cargo-zigbuild, also from
# PyPI), napi-rs's CLI and binaryen from bindings/node's npm devDependencies.
# Builds reuse target/: the wheels land in target/<triple>/release (as with
# build-lambda-zip.sh), the addons in target/packaging/cargo-npm, the tools in
# target/packaging/venv, so a second run with no source change only repacks.
# scripts/test-packages.sh then installs and tests what is in dist/.
#
# Usage: scripts/build-packages.sh [npm] [wheels] [zips]   (default: all three;
#        zips need the wheels, and build them when dist/ has none)
# Environment: DIST (default <repo>/dist), PYTHON (python3 for the tools venv).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
cd "$root"
dist="${DIST:-$root/dist}"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd -P)"

want_npm=false want_wheels=false want_zips=false
[[ $# -eq 0 ]] && set -- npm wheels zips
for what in "$@"; do
  case "$what" in
    npm) want_npm=true ;;
    wheels) want_wheels=true ;;
    zips) want_zips=true ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown artefact $what (npm, wheels or zips)" ;;
  esac
done

version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
start=$SECONDS
timing=()
mark() { timing+=("$1 $((SECONDS - ${2}))s"); }

# --- Tools -------------------------------------------------------------------
venv="$PACKAGING_VENV"
venv_ensure --clean "$venv" "${REQ_BUILD[@]}" "${REQ_ZIG[@]}" "${REQ_AUDIT[@]}" 'boto3>=1.28'
py="$venv/bin/python"
# zig for cargo-zigbuild and maturin: the ziglang package's `python -m ziglang`,
# found through the venv's python3 on PATH; cargo zigbuild through PATH too.
export PATH="$venv/bin:$PATH"

rust_targets x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu

# --- npm -----------------------------------------------------------------------
if $want_npm; then
  t0=$SECONDS
  node_dir="$root/bindings/node"
  # bindings/node's devDependencies (napi-rs CLI, binaryen) and the wasm fallback.
  need npm wasm

  stage="$root/target/packaging/npm"
  rm -rf "$stage"
  mkdir -p "$stage/addons"
  for triple in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
    log "native addon $triple (glibc 2.17, cargo zigbuild)"
    # --target <triple>.2.17: zig links against glibc 2.17's symbols, so the
    # addon loads on any glibc >= 2.17 (Amazon Linux 2, RHEL/CentOS 7 and up).
    # Its own target dir: cargo-zigbuild and maturin --zig configure cargo
    # differently, and in one target dir each would rebuild everything the
    # other built (serde, proc macros, the core) on every run.
    (cd "$node_dir" && CARGO_TARGET_DIR="$root/target/packaging/cargo-npm" \
      npx --no-install napi build --platform --release --no-js \
      --dts native.d.ts --cross-compile --target "$triple.2.17" \
      --output-dir "$stage/addons") >&2
  done

  # The package as npm publishes it, from a copy: the source tree's own
  # *.node (a native debug or release build) never leaks into the tarball.
  pkg="$stage/package"
  mkdir -p "$pkg"
  # package.json's "files" picks what goes in.
  (cd "$node_dir" && tar --exclude=./node_modules --exclude='*.node' --exclude=./wasm -cf - .) \
    | tar -xf - -C "$pkg"
  cp "$stage"/addons/consul-lambda-sync.linux-x64-gnu.node \
    "$stage"/addons/consul-lambda-sync.linux-arm64-gnu.node "$pkg/"
  mkdir -p "$pkg/wasm"
  cp "$root"/wasm/pkg-node/consul_lambda_sync_wasm.js "$root"/wasm/pkg-node/consul_lambda_sync_wasm.d.ts \
    "$root"/wasm/pkg-node/consul_lambda_sync_wasm_bg.wasm "$root"/wasm/pkg-node/package.json "$pkg/wasm/"
  rm -f "$dist"/consul-lambda-sync-*.tgz
  tgz="$(cd "$pkg" && npm pack --silent --pack-destination "$dist")"
  tgz="$dist/$(basename "$tgz")"
  listing="$(tar -tzf "$tgz")"
  for f in package/consul-lambda-sync.linux-x64-gnu.node package/consul-lambda-sync.linux-arm64-gnu.node \
    package/wasm/consul_lambda_sync_wasm_bg.wasm package/index.js package/index.d.ts package/types.d.ts; do
    grep -qx "$f" <<<"$listing" || die "$(basename "$tgz") lacks $f"
  done
  log "npm package $(basename "$tgz") ($(wc -c <"$tgz") bytes)"
  mark npm "$t0"
fi

# --- Python wheels ---------------------------------------------------------------
if $want_wheels; then
  t0=$SECONDS
  rm -f "$dist"/consul_lambda_sync-*.whl
  for triple in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
    arch="${triple%%-*}"
    log "wheel $arch (manylinux2014, maturin --zig)"
    (cd "$root/bindings/python" && maturin build --release --zig --compatibility manylinux2014 \
      --target "$triple" --interpreter "$py" --out "$dist") >&2
    whl="$(ls "$dist"/consul_lambda_sync-"$version"-cp39-abi3-*"_$arch.whl")"
    # auditwheel (the same check PyPI's manylinux policy uses): the platform tag
    # the wheel's symbols allow, and no external libraries.
    report="$(auditwheel show "$whl")"
    printf '%s\n' "$report" >&2
    grep -q "\"manylinux_2_17_$arch\"" <<<"$report" || die "auditwheel: $(basename "$whl") is not manylinux_2_17_$arch"
    ! grep -q 'external shared libraries are required' <<<"$report" || die "auditwheel: $(basename "$whl") needs external libraries"
    log "wheel $(basename "$whl") ($(wc -c <"$whl") bytes)"
  done
  mark wheels "$t0"
fi

# --- Lambda zips -----------------------------------------------------------------
if $want_zips; then
  t0=$SECONDS
  for arch in x86_64 arm64; do
    warch=$([[ $arch == arm64 ]] && echo aarch64 || echo x86_64)
    whl="$(ls "$dist"/consul_lambda_sync-"$version"-cp39-abi3-*"_$warch.whl" 2>/dev/null || true)"
    if [[ -z "$whl" ]]; then
      log "no $warch wheel in $dist: building the wheels first"
      bash "$0" wheels
      whl="$(ls "$dist"/consul_lambda_sync-"$version"-cp39-abi3-*"_$warch.whl")"
    fi
    log "Lambda zip $arch"
    VENV="$venv" bash "$root/scripts/build-lambda-zip.sh" --arch "$arch" --wheel "$whl" \
      --out "$dist/consul-lambda-sync-lambda-$arch.zip" >/dev/null
  done
  mark zips "$t0"
fi

(cd "$dist" && sha256sum -- *.tgz *.whl *.zip 2>/dev/null >SHA256SUMS || true)
if $want_npm && $want_wheels && $want_zips; then provided packages; fi
log "done in $((SECONDS - start))s (${timing[*]})"
printf '%-80s %10s\n' artefact bytes
for f in "$dist"/*.tgz "$dist"/*.whl "$dist"/*.zip; do
  [[ -f "$f" ]] && printf '%-80s %10d\n' "$(basename "$f")" "$(wc -c <"$f")"
done
