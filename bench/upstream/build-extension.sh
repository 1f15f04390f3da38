#!/usr/bin/env bash
# Build (once) and print the path of upstream's Lambda extension, the peer of
# bench/extension.py: hashicorp/terraform-aws-consul-lambda, module
# consul-lambda, package consul-lambda-extension, built from upstream's own
# source with `go build` (its dependencies through the Go module proxy; the
# proxy refuses upstream's module itself, see bench/upstream/build.sh).
#
#   UPSTREAM_EXTENSION_BIN=/path   use that binary as is
#   UPSTREAM_REPO=/path/to/repo    a clone (or bare mirror) of
#                                  hashicorp/terraform-aws-consul-lambda; HEAD is built
#   UPSTREAM_REF=<commit or tag>   what to build from UPSTREAM_REPO (default HEAD)
#
# Cached per commit in
#   ${CONSUL_LAMBDA_SYNC_CACHE:-~/.cache/consul-lambda-sync}/upstream-extension/<commit>/consul-lambda-extension
# stdout: the binary's path only. Never run in CI (it needs upstream's source).
set -euo pipefail
log() { printf 'upstream-extension: %s\n' "$*" >&2; }

if [[ -n "${UPSTREAM_EXTENSION_BIN:-}" ]]; then
  [[ -x "$UPSTREAM_EXTENSION_BIN" ]] || { log "UPSTREAM_EXTENSION_BIN=$UPSTREAM_EXTENSION_BIN is not executable"; exit 1; }
  printf '%s\n' "$UPSTREAM_EXTENSION_BIN"
  exit 0
fi
[[ -n "${UPSTREAM_REPO:-}" ]] || { log "set UPSTREAM_REPO to a clone of hashicorp/terraform-aws-consul-lambda (or UPSTREAM_EXTENSION_BIN)"; exit 1; }
commit="$(git -C "$UPSTREAM_REPO" rev-parse "${UPSTREAM_REF:-HEAD}^{commit}")"
cache_root="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
out_dir="$cache_root/upstream-extension/$commit"
bin="$out_dir/consul-lambda-extension"
if [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$UPSTREAM_REPO" archive "$commit" consul-lambda | tar -x -C "$work"
log "building consul-lambda-extension at $commit ($(go version | cut -d' ' -f3))"
(
  cd "$work/consul-lambda"
  # As upstream's release workflow (.github/workflows/build.yml): CGO_ENABLED=0, -ldflags "-s -w".
  GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./consul-lambda-extension
) >&2 || { log "cannot build upstream's extension (see above)"; exit 1; }
mv -f "$bin.tmp" "$bin"
printf '%s\n' "$bin"
