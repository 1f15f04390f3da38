#!/usr/bin/env bash
# Build (once) and print the path of a real `consul` binary.
#
# Consul is not packaged for Debian and prebuilt binaries cannot be
# downloaded here, so it is compiled from its Go module, pinned by the tools
# module in tools/consul (go.mod + go.sum). The result is cached in
#   ${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}/consul-<version>/consul
# and reused on later runs (a cached build is only redone when the
# requirements in tools/consul/go.mod or go.sum change): scripts/install-go-tool.sh.
#
# stdout: the absolute path of the binary, and nothing else.
# stderr: progress messages.
#
# Usage: consul_bin="$(scripts/install-consul.sh)"            # the current release (tools/consul)
#        old_bin="$(scripts/install-consul.sh tools/consul-1.15)" # the old release line the e2e
#                                                                # suite also runs on
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-go-tool.sh" "${1:-tools/consul}" \
  github.com/hashicorp/consul github.com/hashicorp/consul consul
