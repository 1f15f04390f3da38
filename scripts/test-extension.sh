#!/usr/bin/env bash
# The Lambda extension (extension/, docs/lambda-to-mesh.md): its layer zips built
# for x86_64 and arm64 (the 4 MB size gate, scripts/build-extension.sh), and the
# end-to-end tests (tests/extension) on real parts: a Consul dev agent with
# Connect, `consul connect proxy` as the destination's sidecar, an SNI-routing
# gateway stand-in, AWS's Lambda Runtime Interface Emulator (built from its Go
# module, cached like Consul: scripts/install-rie.sh) running the layer's
# extension, moto for Parameter Store, and the registrator writing the data.
#
# Installs what it needs (scripts/lib.sh). Usage: scripts/test-extension.sh [pytest args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"

need package consul
start=$SECONDS

log "layer zips"
mapfile -t zips < <(bash scripts/build-extension.sh x86_64 arm64)
for z in "${zips[@]}"; do
  "$py" -c 'import sys, zipfile; n = zipfile.ZipFile(sys.argv[1]).namelist(); assert n == ["extensions/consul-lambda-extension"], n' "$z"
done
export CLS_EXTENSION_LAYER_ZIP="${zips[0]}"
CLS_LAMBDA_RIE="$(bash scripts/install-rie.sh)"
export CLS_LAMBDA_RIE

if [[ "${SKIP_LINT:-}" != 1 ]]; then
  need lint
  "$VENV/bin/ruff" check tests/extension >&2
  "$VENV/bin/ruff" format --check --config bindings/python/pyproject.toml tests/extension >&2
  "$VENV/bin/mypy" --config-file bindings/python/pyproject.toml --strict tests/extension >&2
fi

no_outside_servers
"$py" -m pytest tests/extension -q -p no:cacheprovider "$@"
log "extension suite: $((SECONDS - start))s"
