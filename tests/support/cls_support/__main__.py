"""``python -m cls_support serve SERVER... [--json]``: starts servers on free
127.0.0.1 ports, prints what a client needs (addresses, tokens, CA), and keeps
them up until stdin closes (``--no-stdin``: until a signal) or SIGTERM, SIGINT or
SIGHUP arrives; then stops them and removes their work dir.

SERVER is one of:
  consul          consul agent -dev
  consul-acl      the same with ACLs on, default deny; prints managementToken and
                  registratorToken (a token of docs/acl-policy.hcl, least privilege)
  consul-tls      HTTPS only; prints caFile and caPem
  consul-cluster  three Consul servers; prints address and addresses
  moto            moto's server; prints endpoint
  moto-seeded     moto with the /_bench/* seeding side door

--port SERVER=PORT puts that server's HTTP(S) API on a fixed port (scripts/start-local.sh).

--json prints one line, a JSON object keyed by SERVER, e.g.
  {"consul-acl": {"address": "http://127.0.0.1:41234", "managementToken": "…",
   "registratorToken": "…"}, "moto": {"endpoint": "http://127.0.0.1:40111"}}
(used by bindings/node/host-test/servers.mjs). Without it: one line per server.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Protocol

from .consul import ConsulAgent, ConsulCluster, acl_policy, consul_binary
from .moto import MotoSeeded, MotoServer
from .procs import make_workdir, remove_workdir

KINDS = ("consul", "consul-acl", "consul-tls", "consul-cluster", "moto", "moto-seeded")


class Server(Protocol):
    def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def _starter(kind: str, workdir: Any, port: Optional[int]) -> Callable[[], Server]:
    def start() -> Server:
        if kind == "moto":
            return MotoServer(workdir, port=port).start()
        if kind == "moto-seeded":
            return MotoSeeded(workdir, port=port).start()
        if kind == "consul-cluster":
            return ConsulCluster(consul_binary(), workdir / kind).start()
        return ConsulAgent(
            consul_binary(),
            workdir / kind,
            acl=kind == "consul-acl",
            tls=kind == "consul-tls",
            port=port,
        ).start()

    return start


def describe(kind: str, server: Server) -> dict[str, Any]:
    out = server.describe()
    if kind == "consul-acl" and isinstance(server, ConsulAgent):
        out["registratorToken"] = server.create_token(acl_policy())
        out["registratorMeshToken"] = server.create_token(acl_policy(mesh=True))
    return out


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _stop_on_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup: SIGHUP stays ignored
            signal.signal(sig, _stop_on_signal)


def _print(info: dict[str, dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(info), flush=True)
        return
    for k, v in info.items():
        print(k, " ".join(f"{a}={b}" for a, b in v.items() if a != "caPem"), flush=True)


def serve(kinds: list[str], ports: dict[str, int], as_json: bool, wait_stdin: bool) -> int:
    _stop_on_signals()
    workdir = make_workdir("serve")
    started: dict[str, Server] = {}
    try:
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            futures = {k: pool.submit(_starter(k, workdir, ports.get(k))) for k in kinds}
            errors = []
            for k, f in futures.items():
                try:
                    started[k] = f.result()
                except Exception as e:
                    errors.append(f"{k}: {e}")
            if errors:
                sys.stderr.write("cls_support serve: " + "\n".join(errors) + "\n")
                return 1
        info = {k: describe(k, s) for k, s in started.items()}
        _print(info, as_json)
        if wait_stdin:
            while sys.stdin.buffer.read(65536):
                pass
        else:
            signal.pause()
        return 0
    finally:
        for s in started.values():
            s.stop()
        remove_workdir(workdir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cls_support", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="start servers until stdin closes or a signal")
    p.add_argument("servers", nargs="+", choices=KINDS, metavar="SERVER")
    p.add_argument("--json", action="store_true", help="one JSON line")
    p.add_argument("--no-stdin", action="store_true", help="ignore stdin; stop on a signal")
    p.add_argument(
        "--port", action="append", default=[], metavar="SERVER=PORT", help="a fixed port"
    )
    args = parser.parse_args(argv)
    if len(set(args.servers)) != len(args.servers):
        parser.error("each SERVER once")
    ports: dict[str, int] = {}
    for spec in args.port:
        kind, _, port = spec.partition("=")
        if kind not in args.servers or kind == "consul-cluster" or not port.isdigit():
            parser.error(f"--port {spec}: want SERVER=PORT for a SERVER started here")
        ports[kind] = int(port)
    return serve(args.servers, ports, args.json, not args.no_stdin)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
