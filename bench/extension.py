"""Our Lambda extension beside upstream's, in one run (BENCHMARKS.md, "Lambda extension").

Each extension runs as Lambda runs it: a fresh process with the function's variables, a
Lambda Extensions API (a stand-in here that records when the extension registers and when
it first asks for the next event — Lambda's "init done" for an extension), and Parameter
Store (moto, through a relay that records when its answer went out). The data is written by
our registrator (the CLI's sync) into moto. The mesh side is the end-to-end test's chain
(tests/extension): the SNI-routing gateway stand-in, `consul connect proxy` as the
destination's sidecar on a Consul dev agent, and the destination (an echo service that also
counts bulk bytes).

Per run and extension, a fresh process:
  ready ms              exec → first `event/next` (Lambda's init ends when every extension asks)
  answer→ready ms       Parameter Store's answer went out → `event/next`; upstream's extension
                        asks for events before its first read, so its value is negative
  first echo ms         exec → the first byte echoed through the listener (a client retrying
                        from exec on): when the function can really use the mesh
  set-up µs             a new connection through the listener until its first byte is echoed
                        (median and p90 of 100 sequential connections, after warm-up)
  MiB/s                 one connection, 256 MiB function → service, through the whole chain
  RSS MiB               VmHWM of the extension at the end of the run (peak), and VmRSS at ready
Each figure's median over the runs; the runs alternate which extension goes first. Nothing
is gated on time: the numbers are printed (and written as JSON with --json).

Usage (bench/extension.sh installs what it needs and passes the binaries):
  python bench/extension.py --ours BIN [--upstream BIN] [--runs 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from cls_support import ConsulAgent, MotoServer, consul_binary, make_workdir, remove_workdir
from cls_support.constants import AWS_TEST_ENV, REGION
from cls_support.procs import free_port, stop_process
from cls_support.relays import Server, SniGateway, connect_sidecar

PREFIX = "/cls/bench"
FN = "bench-caller"
ENABLED = "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled"
LISTEN_PORT = 21001
BULK = 256 * 1024 * 1024


class EchoCount(Server):
    """Echoes, except that a connection opening with b"BULK" and an 8-byte length is
    counted: once that many bytes have arrived, the count is the reply. (The length
    comes first because `consul connect proxy` closes both directions when one ends:
    no half-close gets through it.)"""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            data = conn.recv(65536)
            if not data.startswith(b"BULK"):
                while data:
                    conn.sendall(data)
                    data = conn.recv(65536)
                return
            while len(data) < 12:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            want = int.from_bytes(data[4:12], "big")
            n = len(data) - 12
            buf = bytearray(1 << 20)
            while n < want:
                k = conn.recv_into(buf)
                if not k:
                    break
                n += k
            conn.sendall(str(n).encode())


class TimedRelay(Server):
    """A TCP relay to Parameter Store that records when bytes went back to the extension."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.answers: list[float] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        up = socket.create_connection(self.target, timeout=10)

        def back() -> None:
            try:
                while True:
                    data = up.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
                    self.answers.append(time.monotonic())
            except OSError:
                pass
            finally:
                for s in (conn, up):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=back, daemon=True)
        t.start()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                up.sendall(data)
        except OSError:
            pass
        t.join(timeout=30)
        conn.close()
        up.close()


class ExtensionsApi:
    """The Lambda Extensions API for one extension process: register, event/next, errors."""

    def __init__(self) -> None:
        self.registered: float | None = None
        self.first_next: float | None = None
        self.shutdown = threading.Event()
        self.errors: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                # (OSError: the extension has gone, the run is over.)
                with contextlib.suppress(OSError):
                    self.end_headers()
                    self.wfile.write(raw)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                if self.path.endswith("/extension/register"):
                    api.registered = time.monotonic()
                    self._reply(
                        {
                            "functionName": FN,
                            "functionVersion": "$LATEST",
                            "handler": "index.handler",
                        },
                        {"Lambda-Extension-Identifier": "bench-extension-id"},
                    )
                else:
                    api.errors.append(f"{self.path} {body[:200]!r}")
                    self._reply({"status": "OK"})

            def do_GET(self) -> None:
                if self.path.endswith("/extension/event/next"):
                    if api.first_next is None:
                        api.first_next = time.monotonic()
                    api.shutdown.wait(600)
                    deadline = int(time.time() * 1000) + 2000
                    self._reply(
                        {
                            "eventType": "SHUTDOWN",
                            "shutdownReason": "spindown",
                            "deadlineMs": deadline,
                        },
                        {"Lambda-Extension-Event-Identifier": "shutdown"},
                    )
                else:
                    self.send_response(404)
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown.set()
        self.server.shutdown()
        self.server.server_close()


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def one_echo(port: int, timeout: float = 10) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise OSError("no echo")


def connection_setups_us() -> list[float]:
    """Sequential new connections through the listener, each until its first byte is
    echoed, after 10 for warm-up: 100 times in µs, sorted."""
    for _ in range(10):
        one_echo(LISTEN_PORT)
    setups = []
    for _ in range(100):
        s0 = time.perf_counter()
        one_echo(LISTEN_PORT)
        setups.append((time.perf_counter() - s0) * 1e6)
    return sorted(setups)


def bulk_seconds(name: str) -> float:
    """One connection: BULK bytes to the service, until its count comes back."""
    chunk = b"\0" * (1 << 20)
    with socket.create_connection(("127.0.0.1", LISTEN_PORT), timeout=60) as s:
        b0 = time.perf_counter()
        s.sendall(b"BULK" + BULK.to_bytes(8, "big"))
        sent = 0
        while sent < BULK:
            s.sendall(chunk)
            sent += len(chunk)
        reply = b""
        while not reply.isdigit() or int(reply) < BULK:
            r = s.recv(64)
            if not r:
                break
            reply += r
        seconds = time.perf_counter() - b0
    if int(reply or b"0") != BULK:
        raise SystemExit(f"{name}: the service counted {reply!r} bytes, not {BULK}")
    return seconds


def serve(root: Path, kind: str, *routes: str) -> tuple[subprocess.Popen[bytes], int]:
    """Starts this file as a server process (``--serve KIND``); returns it and its port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, *routes],
        stdout=subprocess.PIPE,
        stderr=open(root / f"{kind}.log", "ab"),  # noqa: SIM115 - the child keeps it
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        raise SystemExit(f"the {kind} stand-in did not start: {line!r}")
    return proc, int(line)


def serve_forever(kind: str, routes: list[str]) -> None:
    """The server process: prints its port, then serves until killed."""
    server: Server
    if kind == "gateway":
        gateway = SniGateway()
        for r in routes:
            name, _, addr = r.partition("=")
            host, _, port = addr.rpartition(":")
            gateway.routes[name] = (host, int(port))
        server = gateway
    else:
        server = EchoCount()
    print(server.port, flush=True)
    threading.Event().wait()


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.consul = ConsulAgent(consul_binary(), root / "consul", node_name="cls-bench").start()
        self.moto = MotoServer(root).start()
        self.relay = TimedRelay(("127.0.0.1", self.moto.port))
        # The destination and the gateway stand-in run in processes of their own: in this
        # one, their threads would wait for the interpreter's lock behind the client's.
        self.service_proc, self.service_port = serve(root, "service")
        self.gateway_proc: subprocess.Popen[bytes] | None = None
        self.gateway_port = 0
        self.sidecar_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def setup(self) -> None:
        c = self.consul
        log = self.root / "sidecar.log"
        self.procs.append(connect_sidecar(c, "echo", self.service_port, self.sidecar_port, log))
        c.put(
            "/v1/config",
            {
                "Kind": "service-intentions",
                "Name": "echo",
                "Sources": [{"Name": FN, "Action": "allow"}],
            },
        )
        td = c.get("/v1/agent/connect/ca/roots")["TrustDomain"]
        route = f"echo.default.dc1.internal.{td}=127.0.0.1:{self.sidecar_port}"
        self.gateway_proc, self.gateway_port = serve(self.root, "gateway", route)
        # The function, and our registrator writing its extension data.
        iam = boto3.client(
            "iam",
            endpoint_url=self.moto.url,
            region_name=REGION,
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = self.root / "fn.zip"
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("index.py", "def handler(e, c):\n    return 1\n")
        boto3.client(
            "lambda",
            endpoint_url=self.moto.url,
            region_name=REGION,
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        ).create_function(
            FunctionName=FN,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.read_bytes()},
            Tags={ENABLED: "true"},
        )
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "AWS_"))}
        cli = str(Path(sys.executable).parent / "consul-lambda-sync")
        out = subprocess.run(
            [cli, "sync", "--json"],
            env={
                **keep,
                **AWS_TEST_ENV,
                "AWS_ENDPOINT_URL": self.moto.url,
                "CONSUL_HTTP_ADDR": c.addr,
                "NODE_NAME": "lambdas",
                "CONSUL_EXTENSION_DATA_PREFIX": PREFIX,
                "LOG_LEVEL": "warn",
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode != 0 or not json.loads(out.stdout).get("ok"):
            raise SystemExit(f"the registrator's sync failed:\n{out.stdout}\n{out.stderr}")

    def run(self, name: str, binary: Path, log: Path) -> dict[str, float]:
        api = ExtensionsApi()
        self.relay.answers.clear()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **AWS_TEST_ENV,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.relay.port}",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
            "AWS_LAMBDA_FUNCTION_NAME": FN,
            "CONSUL_MESH_GATEWAY_URI": f"127.0.0.1:{self.gateway_port}",
            "CONSUL_SERVICE_UPSTREAMS": f"echo:{LISTEN_PORT}",
            "CONSUL_EXTENSION_DATA_PREFIX": PREFIX,
            "LOG_LEVEL": "info",
        }
        first_echo: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                try:
                    one_echo(LISTEN_PORT, timeout=5)
                    first_echo.append(time.monotonic())
                    return
                except OSError:
                    time.sleep(0.0005)

        poller = threading.Thread(target=poll, daemon=True)
        out = open(log, "ab")  # noqa: SIM115 - closed below
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [str(binary)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.root
        )
        poller.start()
        try:
            deadline = time.monotonic() + 30
            while api.first_next is None or not first_echo:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not become ready (exit {proc.poll()}): see {log}")
                time.sleep(0.001)
            rss_ready = status_kib(proc.pid, "VmRSS") / 1024
            answers = [t for t in self.relay.answers if t <= api.first_next] or self.relay.answers
            answer = max(answers) if answers else float("nan")
            setups = connection_setups_us()
            seconds = bulk_seconds(name)
            peak = status_kib(proc.pid, "VmHWM") / 1024
            # Shutdown: the SHUTDOWN event, until the process has exited.
            s0 = time.monotonic()
            api.shutdown.set()
            proc.wait(timeout=10)
            shutdown_ms = (time.monotonic() - s0) * 1000
        finally:
            stop.set()
            if proc.poll() is None:
                stop_process(proc)
            api.close()
            out.close()
        assert api.registered is not None
        assert api.first_next is not None
        return {
            "register_ms": (api.registered - t0) * 1000,
            "ready_ms": (api.first_next - t0) * 1000,
            "answer_ms": (answer - t0) * 1000,
            "answer_to_ready_ms": (api.first_next - answer) * 1000,
            "first_echo_ms": (first_echo[0] - t0) * 1000,
            "setup_us_p50": setups[len(setups) // 2],
            "setup_us_p90": setups[len(setups) * 9 // 10],
            "mib_s": BULK / (1 << 20) / seconds,
            "rss_ready_mib": rss_ready,
            "rss_peak_mib": peak,
            "shutdown_ms": shutdown_ms,
        }

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p)
        stop_process(self.gateway_proc)
        stop_process(self.service_proc)
        self.relay.close()
        self.moto.stop()
        self.consul.stop()


def layer_zip_bytes(binary: Path, out: Path) -> int:
    """The binary as a layer zip (extensions/consul-lambda-extension, deflate 9), in bytes."""
    info = zipfile.ZipInfo("extensions/consul-lambda-extension", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(info, binary.read_bytes(), compresslevel=9)
    return out.stat().st_size


ROWS = [
    ("ready (exec → event/next), ms", "ready_ms", 1),
    ("Parameter Store answer → ready, ms", "answer_to_ready_ms", 2),
    ("first echo through the listener (from exec), ms", "first_echo_ms", 1),
    ("register (exec → register), ms", "register_ms", 1),
    ("connection set-up, median µs", "setup_us_p50", 0),
    ("connection set-up, p90 µs", "setup_us_p90", 0),
    ("throughput, MiB/s (256 MiB, one connection)", "mib_s", 0),
    ("RSS at ready, MiB", "rss_ready_mib", 1),
    ("peak RSS (VmHWM), MiB", "rss_peak_mib", 1),
    ("shutdown (SHUTDOWN → exit), ms", "shutdown_ms", 1),
]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--serve", choices=["gateway", "service"], help=argparse.SUPPRESS)
    ap.add_argument("routes", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--ours", type=Path, help="our consul-lambda-extension binary")
    ap.add_argument("--ours-zip", type=Path, help="our layer zip (its size is reported)")
    ap.add_argument("--upstream", type=Path, help="upstream's consul-lambda-extension binary")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.serve:
        serve_forever(args.serve, args.routes)
        return
    if not args.ours:
        ap.error("--ours is required")
    impls = {"ours": args.ours}
    if args.upstream:
        impls["upstream"] = args.upstream
    root = make_workdir("bench-extension")
    bench = Bench(root)
    results: dict[str, list[dict[str, float]]] = {k: [] for k in impls}
    try:
        bench.setup()
        for i in range(args.runs):
            order = list(impls) if i % 2 == 0 else list(reversed(impls))
            for name in order:
                r = bench.run(name, impls[name], root / f"{name}.log")
                results[name].append(r)
                print(
                    f"run {i + 1} {name}: ready {r['ready_ms']:.1f} ms, answer→ready "
                    f"{r['answer_to_ready_ms']:.2f} ms, first echo {r['first_echo_ms']:.1f} ms, "
                    f"set-up {r['setup_us_p50']:.0f} µs, {r['mib_s']:.0f} MiB/s, "
                    f"peak RSS {r['rss_peak_mib']:.1f} MiB",
                    file=sys.stderr,
                )
    finally:
        bench.stop()
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in results.items()}
    names = list(impls)
    print(f"\n{args.runs} runs each, medians; load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, field, digits in ROWS:
        print(f"| {label} | " + " | ".join(f"{med[n][field]:,.{digits}f}" for n in names) + " |")
    sizes = {}
    for n in names:
        zip_path = args.ours_zip if n == "ours" and args.ours_zip else root / f"{n}.zip"
        if not (n == "ours" and args.ours_zip):
            layer_zip_bytes(impls[n], zip_path)
        sizes[n] = (zip_path.stat().st_size, impls[n].stat().st_size)
    print("| layer zip, bytes | " + " | ".join(f"{sizes[n][0]:,}" for n in names) + " |")
    print("| binary, bytes | " + " | ".join(f"{sizes[n][1]:,}" for n in names) + " |")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "median": med, "sizes": sizes}, indent=2))
    remove_workdir(root)


if __name__ == "__main__":
    main()
