#!/usr/bin/env bash
# Build (once) and print the path of AWS's Lambda Runtime Interface Emulator
# (aws-lambda-rie), which serves the Runtime and Extensions APIs in the extension's
# end-to-end test. Like Consul (scripts/install-consul.sh), it is compiled from its
# Go module, pinned by the tools module in tools/lambda-rie (go.mod + go.sum), and
# cached in
#   ${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}/lambda-rie-<version>/aws-lambda-rie
# rebuilt only when tools/lambda-rie/go.mod or go.sum change.
#
# stdout: the absolute path of the binary, and nothing else. stderr: progress.
set -euo pipefail

log() { printf 'install-lambda-rie: %s\n' "$*" >&2; }

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools/lambda-rie" && pwd -P)"
module=github.com/aws/aws-lambda-runtime-interface-emulator
version="$(awk -v m="$module" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$tools_dir/go.mod")"
[[ -n "$version" ]] || { log "cannot find the $module version in $tools_dir/go.mod"; exit 1; }

cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
out_dir="$cache_root/lambda-rie-${version#v}"
bin="$out_dir/aws-lambda-rie"
stamp="$(cat "$tools_dir/go.mod" "$tools_dir/go.sum" | sha256sum | cut -d' ' -f1)"
current() { [[ -x "$bin" && "$(cat "$out_dir/.tools-module.sha256" 2>/dev/null)" == "$stamp" ]]; }

if ! current; then
  mkdir -p "$out_dir"
  exec 9>"$out_dir/.lock"
  flock 9
  if ! current; then
    command -v go >/dev/null 2>&1 || { log "go is not installed; it is needed to build the emulator"; exit 1; }
    log "building aws-lambda-rie $version (first run only)"
    start=$SECONDS
    (cd "$tools_dir" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w" -o "$bin.tmp" "$module/cmd/aws-lambda-rie") >&2
    mv -f "$bin.tmp" "$bin"
    printf '%s\n' "$stamp" >"$out_dir/.tools-module.sha256"
    log "built in $((SECONDS - start))s"
  fi
  exec 9>&-
fi
printf '%s\n' "$bin"
