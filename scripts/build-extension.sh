#!/usr/bin/env bash
# Builds the Lambda extension's layer zips (docs/lambda-to-mesh.md):
#   dist/consul-lambda-extension-<version>-x86_64.zip
#   dist/consul-lambda-extension-<version>-arm64.zip
# each holding extensions/consul-lambda-extension (mode 755), the layout Lambda
# expects for an external extension (/opt/extensions/<name>). The binaries link
# against glibc 2.17 (every Lambda runtime has a newer one), cross-built with
# cargo-zigbuild and PyPI's zig, as the project's other artefacts. A layer zip
# over 4 MB fails the build.
#
# Cargo's output goes to $EXTENSION_TARGET_DIR, by default
#   ${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}/extension-target
# outside the checkout, so that a fresh clone (CI) reuses the compiled
# dependencies (ring's C and assembly, rustls, serde) and rebuilds only the
# workspace's own crates. Cargo locks the directory; concurrent builds wait.
# The sources are built from a copy at a fixed place,
#   ${CONSUL_LAMBDA_SYNC_CACHE:-…}/extension-src
# where only the files whose content changed are rewritten: cargo keys a
# workspace crate by its path and a file's age, so a fresh clone at a new path
# (CI) with the same core and extension rebuilds nothing. One build at a time
# (a lock), as two checkouts take turns at that copy.
# (The first build on a machine is cold: both architectures took 378 s on 2
# busy cores; a fresh clone without that copy took 216 s, the core and the
# extension again for each architecture; with it, a few seconds.)
#
# Usage: bash scripts/build-extension.sh [x86_64|arm64 ...]   (default: both)
# stdout: the zip paths, one a line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"

archs=("$@")
[[ ${#archs[@]} -gt 0 ]] || archs=(x86_64 arm64)
max_bytes=4000000

cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
target_dir="${EXTENSION_TARGET_DIR:-$cache_root/extension-target}"
mkdir -p "$target_dir"
# zig and cargo-zigbuild in a venv of the cache too: cargo-zigbuild's C compiler
# wrappers are named after the venv's path, and a new name makes ring's build
# script (and all that depends on ring) run again.
zig_venv="$cache_root/extension-zig-venv"
(
  flock 9
  venv_ensure --clean "$zig_venv" "${REQ_ZIG[@]}"
) 9>"$cache_root/extension-zig-venv.lock"
export PATH="$zig_venv/bin:$PATH"
version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
src_dir="$cache_root/extension-src"
exec 8>"$cache_root/extension-build.lock"
flock 8
# The workspace's manifests and the crates' sources (tracked, or new and not
# ignored), as they are in the working tree.
list="$(mktemp)"
at_exit 'rm -f "$list"'
git -C "$repo" ls-files -z --cached --others --exclude-standard -- Cargo.toml Cargo.lock clippy.toml \
  core extension bindings/node bindings/python wasm tools/gen-types >"$list"
"$zig_venv/bin/python" - "$repo" "$src_dir" "$list" <<'PY'
import os, sys
repo, dst, listing = sys.argv[1], sys.argv[2], sys.argv[3]
keep = set()
with open(listing, "rb") as f:
    names = f.read().decode().split("\0")
for rel in filter(None, names):
    src = os.path.join(repo, rel)
    if not os.path.isfile(src):
        continue
    keep.add(rel)
    out = os.path.join(dst, rel)
    with open(src, "rb") as f:
        data = f.read()
    try:
        with open(out, "rb") as f:
            if f.read() == data:
                continue
    except OSError:
        pass
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "wb") as f:
        f.write(data)
    os.chmod(out + ".tmp", os.stat(src).st_mode & 0o777)
    os.replace(out + ".tmp", out)
for base, _dirs, files in os.walk(dst):
    for name in files:
        rel = os.path.relpath(os.path.join(base, name), dst)
        if rel not in keep:
            os.remove(os.path.join(dst, rel))
PY
mkdir -p dist
for arch in "${archs[@]}"; do
  case "$arch" in
    x86_64) triple=x86_64-unknown-linux-gnu ;;
    arm64) triple=aarch64-unknown-linux-gnu ;;
    *) die "unknown architecture $arch (x86_64 or arm64)" ;;
  esac
  rust_targets "$triple"
  log "extension $arch ($triple, glibc 2.17, cargo zigbuild, target dir $target_dir)"
  t0=$SECONDS
  cargo zigbuild -q --locked --profile extension-release -p consul-lambda-extension \
    --manifest-path "$src_dir/Cargo.toml" --target "$triple.2.17" --target-dir "$target_dir" >&2
  bin="$target_dir/$triple/extension-release/consul-lambda-extension"
  zip="dist/consul-lambda-extension-$version-$arch.zip"
  # A reproducible zip: fixed time, the mode Lambda needs, nothing else.
  "$zig_venv/bin/python" - "$bin" "$zip" <<'PY'
import sys, zipfile
src, out = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("extensions/consul-lambda-extension", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = (0o100755 << 16)
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(out, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY
  size="$(stat -c %s "$zip")"
  log "$zip: $size bytes (binary $(stat -c %s "$bin") bytes; built in $((SECONDS - t0))s)"
  [[ "$size" -le "$max_bytes" ]] || die "$zip is $size bytes, over the 4 MB limit"
  printf '%s\n' "$repo/$zip"
done
