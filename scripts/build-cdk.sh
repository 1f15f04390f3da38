#!/usr/bin/env bash
# Builds the CDK construct package (bindings/cdk, jsii) for every CDK language
# into dist/, from the core's packed artefacts (scripts/build-packages.sh):
#
#   consul-lambda-sync-cdk-<version>.tgz              npm (TypeScript/JavaScript)
#   consul_lambda_sync_cdk-<version>-py3-none-any.whl  Python (jsii-pacmak)
#   consul-lambda-sync-cdk-maven/                     Java: a Maven repository
#                                                     (com.example.consul-lambda-sync:
#                                                     consul-lambda-sync-cdk:<version>)
#   consul-lambda-sync-cdk-go/                        Go (only when asked: `go`; the module
#                                                     example.invalid/consul-lambda-sync/consullambdasynccdk)
#
# The package carries, besides the compiled construct (lib/, .jsii):
#   core/       the core's JavaScript and WebAssembly build (from the npm
#               tarball): the construct's synth-time checks, which run in
#               Node.js in every jsii language (no native addon needed)
#   lambda/     the registrator's code for both architectures, so `cdk synth`
#               needs nothing else: nodejs-{x86_64,arm64}.zip (the npm package's
#               host/ and index.js, that architecture's addon, the wasm
#               fallback; the Lambda Node.js runtime provides the AWS SDK v3)
#               and python-{x86_64,arm64}.zip (the Lambda zips of build-packages.sh)
#   layer/      the Lambda extension's layers (ConsulMeshAccess):
#               consul-lambda-extension-{x86_64,arm64}.zip (scripts/build-extension.sh)
#
# Usage: scripts/build-cdk.sh [js] [python] [java] [go]   (default: js python java)
# Environment: DIST (default <repo>/dist; the core's artefacts are built there
# first when DIST is unset). Tools: bindings/cdk's npm devDependencies (jsii,
# jsii-pacmak), python3 (venv), Java 17 and Maven (~/.m2 caches what Maven fetches).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
cdk_dir="$root/bindings/cdk"
if [[ -z "${DIST:-}" ]]; then need packages; fi
dist="${DIST:-$root/dist}"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd -P)"
version="$(awk -F'"' '/^version = / { print $2; exit }' "$root/Cargo.toml")"
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(js python java)
start=$SECONDS

need cdk_npm
cd "$cdk_dir"

core_tgz="$dist/consul-lambda-sync-$version.tgz"
[[ -f "$core_tgz" ]] || die "no $core_tgz: build it with scripts/build-packages.sh npm"
for arch in x86_64 arm64; do
  [[ -f "$dist/consul-lambda-sync-lambda-$arch.zip" ]] || die "no consul-lambda-sync-lambda-$arch.zip in $dist: scripts/build-packages.sh zips"
done

# --- core/ and lambda/ ---------------------------------------------------------------
work="$(mktemp -d)"
at_exit 'rm -rf "$work"'
tar -xzf "$core_tgz" -C "$work"
core_pkg="$work/package"
rm -rf core lambda
mkdir -p core/wasm lambda
cp "$core_pkg"/index.js "$core_pkg"/index.d.ts "$core_pkg"/types.d.ts "$core_pkg"/package.json core/
cp "$core_pkg"/wasm/*.js "$core_pkg"/wasm/*.wasm "$core_pkg"/wasm/package.json core/wasm/
# zip_dir DIR OUT: a zip of DIR with fixed timestamps and order, so the asset hash
# (and the template) only changes when the code does.
zip_dir() {
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for base, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(base, f)
            info = zipfile.ZipInfo(os.path.relpath(full, src), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(full, "rb") as fh:
                z.writestr(info, fh.read())
PY
}
for arch in x86_64 arm64; do
  node_arch=$([[ $arch == arm64 ]] && echo arm64 || echo x64)
  stage="$work/nodejs-$arch"
  mkdir -p "$stage/wasm"
  cp -r "$core_pkg"/host "$stage/"
  cp "$core_pkg"/index.js "$core_pkg"/package.json "$core_pkg/consul-lambda-sync.linux-$node_arch-gnu.node" "$stage/"
  cp "$core_pkg"/wasm/*.js "$core_pkg"/wasm/*.wasm "$core_pkg"/wasm/package.json "$stage/wasm/"
  rm -f "$stage"/host/*.d.ts
  zip_dir "$stage" "lambda/nodejs-$arch.zip"
  # The Python Lambda zip, repacked the same way.
  mkdir -p "$work/python-$arch"
  python3 -m zipfile -e "$dist/consul-lambda-sync-lambda-$arch.zip" "$work/python-$arch"
  zip_dir "$work/python-$arch" "lambda/python-$arch.zip"
done
# layer/: the Lambda extension's layer zips (ConsulMeshAccess), built here (cargo
# skips what is up to date; scripts/build-extension.sh).
rm -rf layer
mkdir -p layer
while read -r zip; do
  case "$zip" in
    *-x86_64.zip) cp "$zip" layer/consul-lambda-extension-x86_64.zip ;;
    *-arm64.zip) cp "$zip" layer/consul-lambda-extension-arm64.zip ;;
  esac
done < <(bash "$root/scripts/build-extension.sh" x86_64 arm64)
[[ -f layer/consul-lambda-extension-x86_64.zip && -f layer/consul-lambda-extension-arm64.zip ]] || die "the extension's layer zips were not built"
cp "$root/bindings/cdk/README.md" "$work/README.check" 2>/dev/null || die "bindings/cdk/README.md is missing"

# --- jsii ----------------------------------------------------------------------------
log "jsii (compile)"
t0=$SECONDS
npm run --silent build >&2
log "jsii: $((SECONDS - t0))s"

t0=$SECONDS
rm -rf dist
log "jsii-pacmak --targets ${targets[*]}"
npx --no-install jsii-pacmak --targets "${targets[@]}" --code-only=false >&2
log "jsii-pacmak: $((SECONDS - t0))s"

# Each target built replaces its previous artefact in $dist (the others stay).
for t in "${targets[@]}"; do
  case "$t" in
    js)
      rm -f "$dist"/consul-lambda-sync-cdk-*.tgz
      cp dist/js/consul-lambda-sync-cdk@"$version".jsii.tgz "$dist/consul-lambda-sync-cdk-$version.tgz" ;;
    python)
      rm -f "$dist"/consul_lambda_sync_cdk-*.whl
      cp dist/python/consul_lambda_sync_cdk-"$version"-py3-none-any.whl "$dist/" ;;
    java) rm -rf "$dist/consul-lambda-sync-cdk-maven" && cp -r dist/java "$dist/consul-lambda-sync-cdk-maven" ;;
    go) rm -rf "$dist/consul-lambda-sync-cdk-go" && cp -r dist/go "$dist/consul-lambda-sync-cdk-go" ;;
    *) die "unknown target $t (js, python, java or go)" ;;
  esac
done
log "done in $((SECONDS - start))s"
for f in "$dist"/consul-lambda-sync-cdk-*.tgz "$dist"/consul_lambda_sync_cdk-*.whl \
  "$dist"/consul-lambda-sync-cdk-maven/com/example/consul-lambda-sync/consul-lambda-sync-cdk/*/*.jar lambda/*.zip layer/*.zip; do
  [[ -f "$f" ]] && printf '%-70s %10d\n' "$(basename "$f")" "$(wc -c <"$f")" >&2
done
true
