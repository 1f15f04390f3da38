#!/usr/bin/env bash
# Runs every test of the project: Rust (fmt, clippy, unit, vectors, properties,
# the engine; generated TypeScript and Python types current),
# Python binding, Node binding on the native addon and on wasm, the packages
# (built, installed, tested; arm64 under qemu), the CDK construct in TypeScript,
# Python and Java (synthesised offline from the packed packages) and its stacks deployed into
# moto and run by AWS's Lambda Runtime Interface Emulator (test-deploy), the browser page, and the
# end-to-end, fault-injection and Node host suites against real servers.
# Installs what it needs.
#
# Each suite declares what it needs (`need venv package consul`, `need npm addon
# wasm`, `need packages`: scripts/lib.sh), made once per run whichever suite asks
# first; so the order below is only the order of the report, and any suite also
# runs alone (bash scripts/test-web.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"
export CARGO_TERM_COLOR=never
need_init # one run: the suites below share what each makes

# Each stage's wall seconds, printed at the end (on a failure too), so a CI log
# shows where the time goes. A stage's time includes what it was the first to
# need (the packages, Consul, …).
_stage_names=()
_stage_secs=()
_stage_open=""
_stage_t0=$SECONDS
_stage_close() {
  if [[ -n "$_stage_open" ]]; then
    _stage_names+=("$_stage_open")
    _stage_secs+=($((SECONDS - _stage_t0)))
  fi
  _stage_open=""
}
stage() {
  _stage_close
  _stage_open="$*"
  _stage_t0=$SECONDS
  printf '\n==> %s\n' "$*" >&2
}
_stage_report() {
  _stage_close
  printf '\n==> stage times (wall seconds, %d in all)\n' "$SECONDS" >&2
  local i
  for i in "${!_stage_names[@]}"; do
    printf '%7d  %s\n' "${_stage_secs[$i]}" "${_stage_names[$i]}" >&2
  done
}
at_exit _stage_report

# The slow installs later suites need — wasm-bindgen-cli (packages), Consul
# 1.22.7 (test-deploy on) and 1.15.4 (test-e2e-consul-1.15): about 9 minutes of
# a cold machine, much of it module downloads — start now, in the background at
# low priority, and fill what the Rust checks and the single-unit release builds
# leave of the two cores. Each install holds a lock: a suite that needs one waits
# for it, or makes it itself if the background one failed (its log is kept).
background_log="$repo/target/background-installs.log"
mkdir -p "$repo/target"
setsid nice -n 15 bash -c '
  bash scripts/install-wasm-bindgen.sh
  bash scripts/install-consul.sh
  bash scripts/install-consul.sh tools/consul-1.15
' >"$background_log" 2>&1 </dev/null &
background_pid=$!
at_exit "kill -- -$background_pid 2>/dev/null"
printf 'background installs: pid %s, log %s\n' "$background_pid" "${background_log#"$repo"/}" >&2

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

stage "SECURITY.md names tests that exist (tests/docs/check_security_md.py)"
python3 tests/docs/check_security_md.py

# dist/ first: every package this tree makes (scripts/build-packages.sh), which
# test-packages, test-cdk and test-deploy need; the suites after it install its
# x86_64 wheel and run its Lambda zip instead of building the same again.
stage "packages (scripts/build-packages.sh)"
need packages

for suite in test-python test-node test-packages test-cdk test-deploy test-web test-e2e test-extension test-e2e-consul-1.15 test-faults test-node-host; do
  stage "$suite"
  bash "scripts/$suite.sh"
done
stage "all tests passed"
