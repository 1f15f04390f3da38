#!/usr/bin/env bash
# The end-to-end suite (tests/e2e) again, on the old Consul release line: 1.15.4,
# the first line with EnvoyExtensions in service-defaults (the Lambda
# extension), built from its Go module by scripts/install-consul.sh
# tools/consul-1.15 and cached like the current release. Every agent the suite
# starts is checked to really be 1.15.4 (CLS_EXPECT_CONSUL_VERSION).
#
# Lint runs once, in scripts/test-e2e.sh; this script runs the tests only.
# Usage: scripts/test-e2e-consul-1.15.sh [pytest args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need package
cd "$repo"
old="$(bash "$repo/scripts/install-consul.sh" tools/consul-1.15)"
version="$("$old" version | sed -n 's/^Consul v//p')"
log "consul $version: $old"

zip="${CLS_LAMBDA_ZIP:-$(lambda_zip_for_tests)}"
no_outside_servers
CONSUL_BIN="$old" CLS_EXPECT_CONSUL_VERSION="$version" CLS_LAMBDA_ZIP="$zip" \
  "$py" -m pytest tests/e2e -q -p no:cacheprovider "$@"
