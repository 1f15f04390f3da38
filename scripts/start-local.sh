#!/usr/bin/env bash
# Starts a local playground: a Consul dev agent and a moto server (fake AWS) on
# fixed loopback ports, in the background (python -m cls_support serve, the same
# servers as the tests'), with the registrator installed in the venv.
#
#   scripts/start-local.sh           start (or reuse) both servers, print the env file
#   scripts/start-local.sh --rebuild reinstall the package from this tree first
#   scripts/start-local.sh --stop    stop them
#   source "${TMPDIR:-/tmp}/cls-local/env.sh"   then: consul-lambda-sync plan
#
# Installs what is missing (the venv and the package built from this tree,
# Consul: `need package consul`, scripts/lib.sh).
# State (pid, logs, env.sh) lives in ${TMPDIR:-/tmp}/cls-local.
# Ports: CLS_CONSUL_PORT (default 18500) and CLS_MOTO_PORT (default 15000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
state="${TMPDIR:-/tmp}/cls-local"
pidfile="$state/servers.pid"
consul_port="${CLS_CONSUL_PORT:-18500}"
moto_port="${CLS_MOTO_PORT:-15000}"

alive() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if [[ "${1:-}" == "--stop" ]]; then
  if alive; then
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "stopped consul and moto (pid $pid)"
  fi
  rm -f "$pidfile"
  exit 0
fi

mkdir -p "$state"

# 1. Install what is missing, or out of date.
# (--rebuild: reinstall the package from this tree even if it looks current.)
installed_is_current() {
  local site
  site="$("$py" -c 'import consul_lambda_sync, moto.server, cls_support, os
print(os.path.dirname(consul_lambda_sync.__file__))' 2>/dev/null)" || return 1
  # The Python sources as in this tree, and no Rust source newer than the extension.
  diff -rq -x '__pycache__' -x '*.so' "$repo/bindings/python/python/consul_lambda_sync" "$site" \
    >/dev/null 2>&1 || return 1
  [[ -z "$(find "$repo/core/src" "$repo/bindings/python/src" "$repo/Cargo.lock" \
    -newer "$(ls "$site"/_native*.so | head -n1)" -print -quit 2>/dev/null)" ]]
}
if [[ "${1:-}" == "--rebuild" ]] || ! installed_is_current; then
  log "installing the package from this tree (and moto)"
  need package
fi
need consul

# 2. Consul dev agent (in memory) and moto, until `--stop`.
if alive; then
  log "consul and moto already running (pid $(cat "$pidfile"))"
else
  : >"$state/servers.json"
  nohup "$py" -m cls_support serve consul moto --json --no-stdin \
    --port "consul=$consul_port" --port "moto=$moto_port" \
    >"$state/servers.json" 2>"$state/servers.log" </dev/null &
  echo $! >"$pidfile"
  log "starting consul and moto (pid $!), log $state/servers.log"
  for _ in $(seq 1 600); do
    [[ -s "$state/servers.json" ]] && break
    if ! alive; then
      log "the servers exited; their log:"
      tail -n 40 "$state/servers.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  [[ -s "$state/servers.json" ]] || die "consul and moto not ready after 120 s (see $state/servers.log)"
fi

# 3. The environment for the registrator (dummy AWS credentials: moto accepts any).
cat >"$state/env.sh" <<EOF2
export PATH="$VENV/bin:\$PATH"
export CONSUL_HTTP_ADDR=http://127.0.0.1:$consul_port
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export NODE_NAME=lambdas
EOF2
log "ready: consul http://127.0.0.1:$consul_port, moto http://127.0.0.1:$moto_port"
printf '%s\n' "$state/env.sh"
