#!/usr/bin/env bash
# Runs every test of the project: Rust (fmt, clippy, unit, vectors, properties,
# generated TypeScript and Python types current),
# Python binding, Node binding on the native addon and on wasm, and the
# end-to-end suite against a real Consul agent and moto. Installs what it needs.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export CARGO_TERM_COLOR=never

stage() { printf '\n==> %s\n' "$*"; }

stage "Rust toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo test"
cargo test --workspace

stage "generated types are current (cargo run -p gen-types -- --check)"
cargo run -q -p gen-types -- --check

# Order matters: test-node runs npm ci and builds the wasm package that build-packages
# packs and test-web serves.
for suite in test-python test-node build-packages test-packages test-web test-e2e test-faults test-node-host; do
  stage "$suite"
  bash "scripts/$suite.sh"
done
stage "all tests passed"
