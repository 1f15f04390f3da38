#!/usr/bin/env bash
# Build (once) and print the path of a binary compiled from a Go module that a tools
# module in tools/ pins (go.mod + go.sum), through the Go module proxy: no prebuilt binary
# is downloaded. The result is cached in
#   ${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}/NAME-<version>/NAME
# and reused on later runs (a cached build is only redone when the requirements in the
# tools module's go.mod or go.sum change).
#
# stdout: the absolute path of the binary, and nothing else. stderr: progress messages.
#
# Usage: scripts/install-go-tool.sh TOOLS_DIR MODULE PACKAGE NAME
#   TOOLS_DIR  the tools module (relative to the repository or absolute)
#   MODULE     the module whose required version names the build (its line in go.mod)
#   PACKAGE    the main package to build
#   NAME       the binary's name
# (scripts/install-consul.sh and scripts/install-rie.sh call it.)
set -euo pipefail

name="${4:?usage: install-go-tool.sh TOOLS_DIR MODULE PACKAGE NAME}"
module="$2"
package="$3"
log() { printf 'install-%s: %s\n' "$name" "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
tools_dir="$(cd "$script_dir/.." && cd "$1" && pwd -P)"

# The version pinned in the tools module (no go invocation: keeps the cached path instant).
version="$(awk -v m="$module" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$tools_dir/go.mod")"
if [[ -z "$version" ]]; then
  log "cannot find the $module version in $tools_dir/go.mod"
  exit 1
fi

cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
mkdir -p "$cache_root"
cache_root="$(cd "$cache_root" && pwd -P)"
out_dir="$cache_root/$name-${version#v}"
bin="$out_dir/$name"
stamp_file="$out_dir/.tools-module.sha256"
# Rebuild when the pinned module graph changes (comment-only edits of go.mod do not count).
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
      log "go is not installed; it is needed to build $name $version"
      exit 1
    fi
    log "building $name $version into $bin (first run only; minutes with a cold Go build cache)"
    start=$SECONDS
    tmp="$out_dir/$name.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    (
      cd "$tools_dir"
      # Never fetch a Go toolchain; use the module graph exactly as pinned
      # (readonly: go.mod/go.sum in the repo are never rewritten).
      export GOTOOLCHAIN=local
      export GOFLAGS="-mod=readonly -buildvcs=false"
      export CGO_ENABLED=0
      go build -trimpath -ldflags "-s -w" -o "$tmp" "$package"
    ) >&2
    mv -f "$tmp" "$bin"
    trap - EXIT
    printf '%s\n' "$stamp" >"$stamp_file"
    log "built $name $version in $((SECONDS - start))s"
  fi
  exec 9>&-
fi

printf '%s\n' "$bin"
