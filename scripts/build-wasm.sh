#!/usr/bin/env bash
# Build the WebAssembly binding (crate wasm/, profile wasm-release) into
#   wasm/pkg-web   ES module for browsers and bundlers (call `init()` first): the
#                  JSON API without the sync engine and the doctor (the browser
#                  preview plans; it never syncs), so the module is smaller
#   wasm/pkg-node  CommonJS module for Node.js (loads synchronously): with the
#                  engine (the Node fallback's `Engine`)
# both with TypeScript declarations, optimised with wasm-opt -Oz (binaryen from
# npm, a devDependency of bindings/node). Prints the optimised and gzipped sizes.
#
# Installs what it needs: the wasm32-unknown-unknown target (rustup), and
# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in
# Cargo.lock (scripts/install-wasm-bindgen.sh: cached in ~/.cargo/bin, redone
# only when the version differs). Works from any directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
cd "$root"

# 1. The Rust target.
rust_targets wasm32-unknown-unknown

# 2. wasm-bindgen-cli matching the crate (the two must agree exactly).
bindgen="$(bash "$root/scripts/install-wasm-bindgen.sh")"

# 3. wasm-opt from the binaryen npm package.
need npm # bindings/node's devDependencies: binaryen's wasm-opt
wasm_opt="$root/bindings/node/node_modules/.bin/wasm-opt"

# 4. Build, bind, optimise.
target_dir="${CARGO_TARGET_DIR:-$root/target}"
built="$target_dir/wasm32-unknown-unknown/wasm-release/consul_lambda_sync_wasm.wasm"
raw_web="$target_dir/wasm32-unknown-unknown/wasm-release/web.wasm"
raw="$target_dir/wasm32-unknown-unknown/wasm-release/node.wasm"
log "cargo build (wasm32-unknown-unknown, profile wasm-release): web, without the engine"
cargo build -p consul-lambda-sync-wasm --target wasm32-unknown-unknown --profile wasm-release --no-default-features
cp "$built" "$raw_web"
log "cargo build (wasm32-unknown-unknown, profile wasm-release): node, with the engine"
cargo build -p consul-lambda-sync-wasm --target wasm32-unknown-unknown --profile wasm-release
cp "$built" "$raw"

# The features rustc enables by default for wasm32-unknown-unknown.
features=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue)

# Unchanged module, script and wasm-bindgen since the packages were last made
# (need wasm in scripts/lib.sh, in another run): keep them.
stamp_file="$target_dir/wasm32-unknown-unknown/wasm-release/pkg.stamp"
stamp="$(cat "$raw_web" "$raw" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1) $("$bindgen" --version)"
fresh=true
for f in pkg-web/consul_lambda_sync_wasm.js pkg-web/consul_lambda_sync_wasm_bg.wasm pkg-web/package.json \
  pkg-node/consul_lambda_sync_wasm.js pkg-node/consul_lambda_sync_wasm_bg.wasm pkg-node/package.json; do
  [[ -f "$root/wasm/$f" ]] || fresh=false
done
if $fresh && [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  log "wasm/pkg-web and wasm/pkg-node are up to date"
  kinds=()
else
  rm -f "$stamp_file"
  kinds=(web node)
fi

for kind in "${kinds[@]}"; do
  out="$root/wasm/pkg-$kind"
  rm -rf "$out"
  case "$kind" in
    web) "$bindgen" "$raw_web" --target web --out-dir "$out" --out-name consul_lambda_sync_wasm ;;
    node) "$bindgen" "$raw" --target nodejs --out-dir "$out" --out-name consul_lambda_sync_wasm ;;
  esac
  bg="$out/consul_lambda_sync_wasm_bg.wasm"
  # --flatten --rereloop before -Oz -Oz: about 8 KB (2%) below a plain -Oz;
  # --converge or -O4 gain nothing more here (BENCHMARKS.md "Packages").
  "$wasm_opt" --flatten --rereloop -Oz -Oz "${features[@]}" \
    --strip-debug --strip-producers --strip-target-features "$bg" -o "$bg"
  module_type=$([[ "$kind" == web ]] && echo module || echo commonjs)
  cat >"$out/package.json" <<EOF
{
  "name": "consul-lambda-sync-wasm-$kind",
  "version": "$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)",
  "license": "MPL-2.0",
  "type": "$module_type",
  "main": "consul_lambda_sync_wasm.js",
  "types": "consul_lambda_sync_wasm.d.ts"
}
EOF
done
printf '%s\n' "$stamp" >"$stamp_file"

# The browser's module has a size budget (BENCHMARKS.md "Packages"): a build
# over it fails here, and so in CI.
budget=641606 # the web build measured 583,278 bytes (2026-12-06) plus 10 %
for kind in web node; do
  wasm="$root/wasm/pkg-$kind/consul_lambda_sync_wasm_bg.wasm"
  size=$(wc -c <"$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  printf 'wasm size (%s): %d bytes (%d KiB), gzipped %d bytes (%d KiB)\n' \
    "$kind" "$size" $(((size + 1023) / 1024)) "$gz" $(((gz + 1023) / 1024))
done
web_size=$(wc -c <"$root/wasm/pkg-web/consul_lambda_sync_wasm_bg.wasm")
if [[ "$web_size" -gt "$budget" ]]; then
  log "the browser's wasm module is $web_size bytes, over its budget of $budget (BENCHMARKS.md \"Packages\")"
  exit 1
fi
