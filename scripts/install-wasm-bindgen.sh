#!/usr/bin/env bash
# Installs wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in
# Cargo.lock (the two must agree exactly) into ~/.cargo/bin, and prints the
# binary's path. Redone only when the version differs; one install at a time
# (scripts/test.sh starts it in the background while the Rust checks run, and
# scripts/build-wasm.sh waits for it).
#
# Built without default features: they only add TLS (rustls and ring) to the
# CLI's test runner's downloads, which nothing here uses; that is most of the
# install's compile time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"

want="$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$want" ]]; then
  die "no wasm-bindgen in Cargo.lock; run cargo build -p consul-lambda-sync-wasm first"
fi
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
bindgen="$cargo_home/bin/wasm-bindgen"
current() { [[ "$("$bindgen" --version 2>/dev/null | awk '{ print $2 }' || true)" == "$want" ]]; }

if ! current; then
  mkdir -p "$cargo_home"
  exec 9>"$cargo_home/.consul-lambda-sync-wasm-bindgen.lock"
  flock 9
  if ! current; then
    log "installing wasm-bindgen-cli $want; this takes a few minutes once"
    if ! cargo install wasm-bindgen-cli --version "$want" --no-default-features --locked --force >&2; then
      # The CLI's own lock file can name a crate version the registry no longer
      # serves (yanked); then let cargo pick the newest compatible versions.
      log "the --locked install failed; installing with freshly resolved dependencies"
      cargo install wasm-bindgen-cli --version "$want" --no-default-features --force >&2
    fi
  fi
  exec 9>&-
fi
printf '%s\n' "$bindgen"
