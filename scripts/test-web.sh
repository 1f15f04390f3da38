#!/usr/bin/env bash
# Browser tests of the plan preview (web/): Debian's headless Chromium driven by playwright-core.
# Works from any directory on a fresh machine: installs chromium with apt when it is missing
# (never downloads a browser build), installs web/'s npm dependencies, builds the wasm core
# (need wasm: scripts/build-wasm.sh, which keeps a current build), copies it into web/vendor/
# (web/build.sh), runs the tests.
#
# Environment: CHROMIUM_PATH (default /usr/bin/chromium); WEB_REBUILD_WASM=1 rebuilds the wasm
# package even when it exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
web="$repo/web"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [[ ! -x $chromium ]]; then
  if [[ $chromium != /usr/bin/chromium ]]; then
    die "CHROMIUM_PATH=$chromium is not an executable"
  fi
  log "installing Debian's chromium (apt)"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version >&2 2>/dev/null || true

cd "$web"
# playwright-core must not fetch a browser; it does not by itself, and this makes sure.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -d node_modules/playwright-core ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

need wasm
bash "$web/build.sh"

export CHROMIUM_PATH="$chromium"
node --test --test-concurrency=1 test/*.test.mjs
