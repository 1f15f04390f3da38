#!/usr/bin/env bash
# Starts a local playground: a Consul dev agent and a moto server (fake AWS) on
# fixed loopback ports, with the registrator installed in a venv.
#
#   scripts/start-local.sh           start (or reuse) both servers, print the env file
#   scripts/start-local.sh --rebuild reinstall the package from this tree first
#   scripts/start-local.sh --stop    stop them
#   source "${TMPDIR:-/tmp}/cls-local/env.sh"   then: consul-lambda-sync plan
#
# Installs what is missing (venv packages and the package itself through
# scripts/test-e2e.sh --setup; Consul through scripts/install-consul.sh).
# State (pids, logs, env.sh) lives in ${TMPDIR:-/tmp}/cls-local.
# Ports: CLS_CONSUL_PORT (default 18500) and CLS_MOTO_PORT (default 15000).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
state="${TMPDIR:-/tmp}/cls-local"
venv="${VENV:-$repo/.venv}"
consul_port="${CLS_CONSUL_PORT:-18500}"
moto_port="${CLS_MOTO_PORT:-15000}"
log() { printf 'start-local: %s\n' "$*" >&2; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {
  local name="$1" pidfile="$state/$1.pid"
  if alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

if [[ "${1:-}" == "--stop" ]]; then
  stop_one consul
  stop_one moto
  exit 0
fi

mkdir -p "$state"

wait_http() { # name url pidfile
  for _ in $(seq 1 300); do
    if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$2" 2>/dev/null; then
      return 0
    fi
    if ! alive "$3"; then
      log "$1 exited; its log:"
      tail -n 40 "$state/$1.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "$1 is not ready at $2"
  return 1
}

# 1. Install what is missing, or out of date.
# (--rebuild: reinstall the package from this tree even if it looks current.)
installed_is_current() {
  local site
  site="$("$venv/bin/python" -c 'import consul_lambda_sync, moto.server, os
print(os.path.dirname(consul_lambda_sync.__file__))' 2>/dev/null)" || return 1
  # The Python sources as in this tree, and no Rust source newer than the extension.
  diff -rq -x '__pycache__' -x '*.so' "$repo/bindings/python/python/consul_lambda_sync" "$site" \
    >/dev/null 2>&1 || return 1
  [[ -z "$(find "$repo/core/src" "$repo/bindings/python/src" "$repo/Cargo.lock" \
    -newer "$(ls "$site"/_native*.so | head -n1)" -print -quit 2>/dev/null)" ]]
}
if [[ "${1:-}" == "--rebuild" ]] || ! installed_is_current; then
  log "installing the package from this tree (and moto, Consul)"
  VENV="$venv" "$repo/scripts/test-e2e.sh" --setup
fi
consul_bin="$("$repo/scripts/install-consul.sh")"

# 2. Consul dev agent (in-memory, Connect on) on fixed non-default ports.
if alive "$state/consul.pid"; then
  log "consul already running (pid $(cat "$state/consul.pid"))"
else
  cat >"$state/consul.json" <<EOF
{
  "node_name": "cls-local",
  "bind_addr": "127.0.0.1",
  "client_addr": "127.0.0.1",
  "advertise_addr": "127.0.0.1",
  "ports": {"http": $consul_port, "dns": -1, "grpc": -1, "grpc_tls": -1,
            "serf_lan": $((consul_port + 1)), "serf_wan": -1, "server": $((consul_port + 2))},
  "log_level": "warn"
}
EOF
  nohup "$consul_bin" agent -dev -config-file "$state/consul.json" >"$state/consul.log" 2>&1 &
  echo $! >"$state/consul.pid"
  log "consul started (pid $!), log $state/consul.log"
fi
wait_http consul "http://127.0.0.1:$consul_port/v1/agent/connect/ca/roots" "$state/consul.pid"

# 3. moto server.
if alive "$state/moto.pid"; then
  log "moto already running (pid $(cat "$state/moto.pid"))"
else
  nohup "$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  log "moto started (pid $!), log $state/moto.log"
fi
wait_http moto "http://127.0.0.1:$moto_port/moto-api/" "$state/moto.pid"

# 4. The environment for the registrator (dummy AWS credentials: moto accepts any).
cat >"$state/env.sh" <<EOF
export PATH="$venv/bin:\$PATH"
export CONSUL_HTTP_ADDR=http://127.0.0.1:$consul_port
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export NODE_NAME=lambdas
EOF
log "ready: consul http://127.0.0.1:$consul_port, moto http://127.0.0.1:$moto_port"
printf '%s\n' "$state/env.sh"
