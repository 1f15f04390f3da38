#!/usr/bin/env bash
# Build (once) and print the path of the upstream Lambda registrator, the peer
# of the benchmark: hashicorp/terraform-aws-consul-lambda, Go module
# github.com/hashicorp/terraform-aws-consul-lambda/consul-lambda, package
# consul-lambda-registrator, at a pinned release tag, through the Go module
# proxy. Cached like scripts/install-consul.sh:
#   ${CONSUL_LAMBDA_SYNC_CACHE:-~/.cache/consul-lambda-sync}/upstream-registrator/consul-lambda-registrator
#
# UPSTREAM_REGISTRATOR_BIN, when set, is used as is (a binary built elsewhere
# from upstream's source); UPSTREAM_REF overrides the pinned version.
#
# stdout: the binary's path only. Exit 1 (with the reason on stderr) when the
# module cannot be fetched: on some networks the module proxy refuses this
# module ("403 ... This module version is not available"); the benchmark then
# runs without the peer and says so.
set -euo pipefail
log() { printf 'upstream-registrator: %s\n' "$*" >&2; }

if [[ -n "${UPSTREAM_REGISTRATOR_BIN:-}" ]]; then
  [[ -x "$UPSTREAM_REGISTRATOR_BIN" ]] || { log "UPSTREAM_REGISTRATOR_BIN=$UPSTREAM_REGISTRATOR_BIN is not executable"; exit 1; }
  printf '%s\n' "$UPSTREAM_REGISTRATOR_BIN"
  exit 0
fi

module=github.com/hashicorp/terraform-aws-consul-lambda/consul-lambda
# v0.1.0-beta6 (2025-04-21) is upstream's newest release; a tag of the nested
# module is consul-lambda/<version>.
ref="${UPSTREAM_REF:-v0.1.0-beta6}"
cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
out_dir="$cache_root/upstream-registrator"
bin="$out_dir/consul-lambda-registrator"
stamp="$out_dir/.ref"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$ref" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "building $module@$ref, package consul-lambda-registrator"
(
  cd "$work"
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
  go mod init bench-upstream-registrator >/dev/null 2>&1 \
    && go get "$module@$ref" \
    && go build -trimpath -o "$bin.tmp" "$module/consul-lambda-registrator"
) >&2 || { log "cannot fetch or build $module@$ref (see above)"; exit 1; }
mv -f "$bin.tmp" "$bin"
printf '%s\n' "$ref" >"$stamp"
printf '%s\n' "$bin"
