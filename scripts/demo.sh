#!/usr/bin/env bash
# A guided demo on this machine: starts Consul and moto (scripts/start-local.sh),
# creates sample tagged Lambda functions in moto, shows the plan, syncs, prints
# the Consul catalog and service-defaults, applies tag changes through the Lambda
# handler (TagResource events, as EventBridge delivers them), shows the update,
# and stops the servers at the end unless --keep.
#
# Usage: scripts/demo.sh [--keep]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
keep=false
demo_args=()
for arg in "$@"; do
  case "$arg" in
    --keep) keep=true; demo_args+=(--keep-functions) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $arg" >&2; exit 3 ;;
  esac
done

env_file="$("$repo/scripts/start-local.sh")"
if ! $keep; then
  trap '"$repo/scripts/start-local.sh" --stop' EXIT
fi
# shellcheck disable=SC1090
source "$env_file"
python -m consul_lambda_sync.host demo "${demo_args[@]}"
if $keep; then
  echo
  echo "servers left running; use them with:  source $env_file"
  echo "stop them with:                       scripts/start-local.sh --stop"
fi
