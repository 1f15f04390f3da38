#!/usr/bin/env bash
# Full-sync benchmark: consul-lambda-sync's Python and Node hosts beside the
# upstream Go registrator, on a real Consul dev agent and a moto server, counted
# by recording proxies (bench/run.py; BENCHMARKS.md "Full sync vs upstream").
#
# Usage: scripts/bench.sh [--functions N [N...]] [--impl python|node|upstream ...]
#                         [--skip upstream:10000] [--config-floor 2500] [--check]
#   default: --functions 1000 10000, the three registrators (ours = python).
# Results: target/bench-full/results.json and tables.md (also printed).
#
# The peer: $UPSTREAM_REGISTRATOR_BIN, or bench/upstream/build.sh (the pinned
# release through the Go module proxy). Without either, ours runs alone.
# Installs what it needs (venv, package, Consul) through scripts/lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need package consul addon
if upstream="$(bash "$repo/bench/upstream/build.sh")"; then
  export UPSTREAM_REGISTRATOR_BIN="$upstream"
  log "upstream registrator: $upstream"
else
  log "upstream registrator unavailable: ours only"
fi

args=("$@")
if [[ " ${args[*]-} " != *" --functions "* ]]; then
  args+=(--functions 1000 10000)
fi
out="$repo/target/bench-full"
mkdir -p "$out"
no_outside_servers
"$py" "$repo/bench/run.py" --out "$out/results.json" --markdown "$out/tables.md" "${args[@]}"
