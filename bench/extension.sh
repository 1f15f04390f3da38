#!/usr/bin/env bash
# Our Lambda extension beside upstream's, in one run (bench/extension.py; BENCHMARKS.md,
# "Lambda extension"). Installs what it needs (the venv with our registrator for the data,
# Consul, the x86_64 layer zip); upstream's binary comes from bench/upstream/build-extension.sh
# (UPSTREAM_EXTENSION_BIN, or UPSTREAM_REPO: a clone of hashicorp/terraform-aws-consul-lambda).
# Without it, only ours runs. Never in CI: it prints numbers and gates nothing.
#
# Usage: bash bench/extension.sh [--runs 5] [--json target/bench-extension.json]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$repo"
need package consul
zip="$(bash scripts/build-extension.sh x86_64)"
work="$(mktemp -d)"
at_exit 'rm -rf "$work"'
"$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$work"
ours="$work/extensions/consul-lambda-extension"
chmod 755 "$ours"
args=(--ours "$ours" --ours-zip "$zip")
if upstream="$(bash bench/upstream/build-extension.sh)"; then
  args+=(--upstream "$upstream")
else
  log "no upstream extension: ours alone"
fi
no_outside_servers
"$py" bench/extension.py "${args[@]}" "$@"
