#!/usr/bin/env bash
# Build (once) and print the path of a real `consul` binary.
#
# Consul is not packaged for Debian and prebuilt binaries cannot be
# downloaded here, so it is compiled from its Go module, pinned by the tools
# module in tools/consul (go.mod + go.sum). The result is cached in
#   ${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}/consul-<version>/consul
# and reused on later runs (a cached build is only redone when the
# requirements in tools/consul/go.mod or go.sum change).
#
# stdout: the absolute path of the binary, and nothing else.
# stderr: progress messages.
#
# Usage: consul_bin="$(scripts/install-consul.sh)"            # the current release (tools/consul)
#        old_bin="$(scripts/install-consul.sh tools/consul-1.15)" # the old release line the e2e
#                                                                # suite also runs on
set -euo pipefail

log() { printf 'install-consul: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
tools_dir="$(cd "$script_dir/.." && cd "${1:-tools/consul}" && pwd -P)"

# Consul version pinned in the tools module (no go invocation: keeps the
# cached path instant).
version="$(awk '$1 == "github.com/hashicorp/consul" && $2 ~ /^v[0-9]/ { print $2; exit }' "$tools_dir/go.mod")"
if [[ -z "$version" ]]; then
  log "cannot find the github.com/hashicorp/consul version in $tools_dir/go.mod"
  exit 1
fi

cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
mkdir -p "$cache_root"
cache_root="$(cd "$cache_root" && pwd -P)"
out_dir="$cache_root/consul-${version#v}"
bin="$out_dir/consul"
stamp_file="$out_dir/.tools-module.sha256"
# Rebuild when the pinned module graph changes (comment-only edits of go.mod
# do not count).
stamp="$(grep -v '^[[:space:]]*//' "$tools_dir/go.mod" | cat - "$tools_dir/go.sum" | sha256sum | cut -d' ' -f1)"

is_current() {
  [[ -x "$bin" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]
}

if ! is_current; then
  mkdir -p "$out_dir"
  # Serialise concurrent callers (parallel test runners) on one build.
  exec 9>"$out_dir/.lock"
  flock 9
  if ! is_current; then
    if ! command -v go >/dev/null 2>&1; then
      log "go is not installed; it is needed to build consul $version"
      exit 1
    fi
    log "building consul $version into $bin (first run only; several minutes with a cold Go build cache)"
    start=$SECONDS
    tmp="$out_dir/consul.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    (
      cd "$tools_dir"
      # Never fetch a Go toolchain; use the module graph exactly as pinned
      # (readonly: go.mod/go.sum in the repo are never rewritten).
      export GOTOOLCHAIN=local
      export GOFLAGS="-mod=readonly -buildvcs=false"
      export CGO_ENABLED=0
      go build -trimpath -ldflags "-s -w" -o "$tmp" github.com/hashicorp/consul
    ) >&2
    mv -f "$tmp" "$bin"
    trap - EXIT
    printf '%s\n' "$stamp" >"$stamp_file"
    log "built $("$bin" version 2>/dev/null | sed -n 1p) in $((SECONDS - start))s"
  fi
  exec 9>&-
fi

printf '%s\n' "$bin"
