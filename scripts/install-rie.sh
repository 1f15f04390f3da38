#!/usr/bin/env bash
# Build (once) and print the path of AWS's Lambda Runtime Interface Emulator
# (aws-lambda-rie), compiled from its Go module as tools/lambda-rie pins it and cached
# like Consul (scripts/install-go-tool.sh):
#   ~/.cache/consul-lambda-sync/aws-lambda-rie-<version>/aws-lambda-rie
#
# stdout: the absolute path of the binary, and nothing else. stderr: progress messages.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-go-tool.sh" tools/lambda-rie \
  github.com/aws/aws-lambda-runtime-interface-emulator \
  github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie aws-lambda-rie
