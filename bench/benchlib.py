"""Shared pieces of the benchmark (bench/run.py) and the fault tests (tests/faults).

- :class:`ConsulAgent`: a real ``consul agent -dev`` on free loopback ports
  (binary from scripts/install-consul.sh).
- :class:`MotoSeeded`: the moto server of bench/moto_seeded.py (moto's own
  HTTP API plus a seeding side door).
- :class:`Proxy`: the recording, fault-injecting proxy (bench/proxy, Go,
  built once into the cache) in front of one of them. Counts come from it.
- :class:`RuntimeAPI`: a minimal Lambda Runtime API; :class:`Registrator` runs a
  registrator process against it (ours through bench/runtime_client.py,
  upstream's Go binary through aws-lambda-go), and ``invoke`` times one
  invocation from the event's delivery to the posted response.

Every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
NODE = "lambdas"
MANAGED_TAG = "managed-by-lambda-registrator"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consul-lambda-registrator"


def cache_dir() -> Path:
    root = os.environ.get("CONSUL_LAMBDA_SYNC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "consul-lambda-sync"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: Any = None,
    log: Optional[Path] = None,
) -> None:
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if check():
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s (last error: {last}):\n{tail(log)}")


def tail(log: Optional[Path], n: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-n:]


def stop_process(proc: Optional[subprocess.Popen[Any]], sig: int = signal.SIGTERM) -> None:
    """Stops one process this module started (by its own handle, never by name)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- servers ------------------------------------------------------------------------------


def consul_binary() -> str:
    explicit = os.environ.get("CONSUL_BIN")
    if explicit:
        return explicit
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-consul.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=3600,
    )
    return out.stdout.strip().splitlines()[-1]


class ConsulAgent:
    """``consul agent -dev`` (in-memory, a fresh empty catalog every start)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "consul.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.session = requests.Session()

    def start(self) -> ConsulAgent:
        conf = {
            "datacenter": "dc1",
            "node_name": "bench",
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "ports": {
                "dns": -1,
                "grpc": -1,
                "grpc_tls": -1,
                "serf_wan": -1,
                "https": -1,
                "serf_lan": free_port(),
                "server": free_port(),
                "http": self.port,
            },
            "log_level": "warn",
            "connect": {"enabled": True},
        }
        cfg = self.dir / "agent.json"
        cfg.write_text(json.dumps(conf))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "agent", "-dev", "-config-file", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )

        def ready() -> bool:
            if not self.get("/v1/status/leader"):
                return False
            roots = self.get("/v1/agent/connect/ca/roots")
            return bool(roots and roots.get("Roots"))

        wait_for(f"consul agent {self.addr}", ready, 90, self.proc, self.log)
        return self

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)

    def get(self, path: str, **params: str) -> Any:
        r = self.session.get(self.addr + path, params=params, timeout=60)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json() if r.content else None

    def clean(self) -> None:
        """Removes the registrator's node and every service-defaults entry."""
        r = self.session.put(self.addr + "/v1/catalog/deregister", json={"Node": NODE}, timeout=60)
        r.raise_for_status()
        for name in self.entries():
            self.session.delete(
                self.addr + f"/v1/config/service-defaults/{name}", timeout=60
            ).raise_for_status()

    def services(self) -> dict[str, dict[str, Any]]:
        """The registrator node's managed services (read directly, not through a proxy)."""
        ns = self.get(f"/v1/catalog/node-services/{NODE}") or {}
        return {
            s["Service"]: s
            for s in ns.get("Services") or []
            if MANAGED_TAG in (s.get("Tags") or [])
        }

    def entries(self) -> dict[str, dict[str, Any]]:
        return {e["Name"]: e for e in self.get("/v1/config/service-defaults") or []}


class MotoSeeded:
    """bench/moto_seeded.py: moto's HTTP API plus /_bench/seed|churn|desired."""

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto.log"
        self.python = python
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.session = requests.Session()

    def start(self) -> MotoSeeded:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.python, str(BENCH / "moto_seeded.py"), "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            "moto server",
            lambda: self.session.get(self.url + "/moto-api/", timeout=2).ok,
            60,
            self.proc,
            self.log,
        )
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.session.request(method, self.url + path, json=body, timeout=600)
        if not r.ok:
            raise RuntimeError(f"moto {method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def seed(self, functions: int) -> dict[str, Any]:
        return dict(self._call("POST", "/_bench/seed", {"functions": functions}))

    def churn(self) -> dict[str, Any]:
        return dict(self._call("POST", "/_bench/churn", {}))

    def desired(self) -> dict[str, dict[str, Any]]:
        return dict(self._call("GET", "/_bench/desired")["services"])

    def reference_pages(self) -> int:
        """Pages a GetResources listing of the functions takes at 100 resources a page,
        asked directly (not through the proxy): ceil(N/100) on AWS; moto also cuts a
        page at 100 tags, so with several tags per function it takes more."""
        import boto3

        client = boto3.client(
            "resourcegroupstaggingapi",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        pages, token = 0, None
        while True:
            kwargs: dict[str, Any] = {
                "ResourceTypeFilters": ["lambda:function"],
                "ResourcesPerPage": 100,
            }
            if token:
                kwargs["PaginationToken"] = token
            out = client.get_resources(**kwargs)
            pages += 1
            token = out.get("PaginationToken")
            if not token:
                return pages


# -- the recording proxy ----------------------------------------------------------------


def proxy_binary() -> str:
    """Builds bench/proxy (Go, standard library only) once per source version."""
    src = BENCH / "proxy"
    digest = hashlib.sha256(
        (src / "main.go").read_bytes() + (src / "go.mod").read_bytes()
    ).hexdigest()[:16]
    out = cache_dir() / "bench-proxy" / digest / "proxy"
    if out.exists():
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"proxy.tmp.{os.getpid()}")
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(tmp), "."], cwd=src, env=env, check=True, timeout=600
    )
    tmp.replace(out)
    return str(out)


class Proxy:
    """One recording proxy process in front of ``target``."""

    def __init__(self, kind: str, target: str, workdir: Path) -> None:
        self.kind = kind
        self.target = target
        self.log = workdir / f"proxy-{kind}-{uuid.uuid4().hex[:6]}.log"
        self.proc: Optional[subprocess.Popen[str]] = None
        self.url = ""
        self.session = requests.Session()

    def start(self) -> Proxy:
        err = open(self.log, "w")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [proxy_binary(), "-kind", self.kind, "-target", self.target],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"proxy did not start:\n{tail(self.log)}")
        self.url = f"http://{line}"
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def stats(self) -> dict[str, Any]:
        return dict(self.session.get(self.url + "/_proxy/stats", timeout=30).json())

    def reset(self) -> None:
        self.session.post(self.url + "/_proxy/reset", timeout=30).raise_for_status()

    def faults(self, rules: list[dict[str, Any]]) -> None:
        self.session.put(self.url + "/_proxy/faults", json=rules, timeout=30).raise_for_status()

    def clear_faults(self) -> None:
        self.session.delete(self.url + "/_proxy/faults", timeout=30).raise_for_status()


# -- the Lambda Runtime API ----------------------------------------------------------------


@dataclass
class Invocation:
    event: Any
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: threading.Event = field(default_factory=threading.Event)
    delivered_at: float = 0.0
    finished_at: float = 0.0
    response: Any = None
    error: Optional[dict[str, Any]] = None


@dataclass
class InvokeResult:
    ok: bool
    seconds: float
    response: Any = None
    error: Optional[dict[str, Any]] = None


class RuntimeAPI:
    """``/2018-06-01/runtime/invocation/next``, ``.../response``, ``.../error``,
    ``/runtime/init/error``: enough for aws-lambda-go and bench/runtime_client.py."""

    def __init__(self, deadline_seconds: float = 7200) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.by_id: dict[str, Invocation] = {}
        self.polling = threading.Event()
        self.init_error: Optional[dict[str, Any]] = None
        self.deadline_seconds = deadline_seconds
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, headers: Optional[dict[str, str]] = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Any:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    # aws-lambda-go streams its response body.
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    raw = b"".join(chunks)
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(n) if n else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode(errors="replace")

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self._send(404, b'{"errorMessage":"unknown path"}')
                    return
                api.polling.set()
                inv = api.pending.get()
                api.polling.clear()
                inv.delivered_at = time.monotonic()
                deadline = int((time.time() + api.deadline_seconds) * 1000)
                self._send(
                    200,
                    json.dumps(inv.event).encode(),
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    },
                )

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                body = self._body()
                if parts[:3] == ["2018-06-01", "runtime", "init"]:
                    api.init_error = body if isinstance(body, dict) else {"errorMessage": body}
                    self._send(202, b'{"status":"OK"}')
                    return
                if (
                    len(parts) == 5
                    and parts[2] == "invocation"
                    and parts[4] in ("response", "error")
                ):
                    inv = api.by_id.get(parts[3])
                    if inv is None:
                        self._send(400, b'{"errorMessage":"unknown request id"}')
                        return
                    if parts[4] == "response":
                        inv.response = body
                    else:
                        inv.error = body if isinstance(body, dict) else {"errorMessage": body}
                    inv.finished_at = time.monotonic()
                    self._send(202, b'{"status":"OK"}')
                    inv.done.set()
                    return
                self._send(404, b'{"errorMessage":"unknown path"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def invoke(
        self, event: Any, timeout: float, alive: Optional[Callable[[], Optional[str]]] = None
    ) -> InvokeResult:
        """Delivers one event and waits for its response. ``alive`` returns a reason
        when the runtime process died (then the invocation fails at once)."""
        inv = Invocation(event)
        self.by_id[inv.request_id] = inv
        start = time.monotonic()
        self.pending.put(inv)
        while not inv.done.wait(1.0):
            dead = alive() if alive else None
            if dead or time.monotonic() - start > timeout:
                return InvokeResult(
                    False,
                    time.monotonic() - start,
                    error={"errorMessage": dead or f"no response within {timeout}s"},
                )
        seconds = inv.finished_at - (inv.delivered_at or start)
        return InvokeResult(inv.error is None, seconds, inv.response, inv.error)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def schedule_event() -> dict[str, Any]:
    """What EventBridge's schedule rule delivers: a full sync."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/consul-lambda-sync-cron"],
        "detail": {},
    }


# -- registrators ----------------------------------------------------------------------------


def upstream_binary() -> Optional[str]:
    """The upstream registrator: $UPSTREAM_REGISTRATOR_BIN, else the cached build of
    bench/upstream/build.sh. None when neither exists."""
    explicit = os.environ.get("UPSTREAM_REGISTRATOR_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RuntimeError(f"UPSTREAM_REGISTRATOR_BIN={explicit} is not executable")
        return explicit
    cached = cache_dir() / "upstream-registrator" / "consul-lambda-registrator"
    return str(cached) if os.access(cached, os.X_OK) else None


class Registrator:
    """A registrator process polling a :class:`RuntimeAPI`."""

    def __init__(
        self,
        impl: str,
        runtime: RuntimeAPI,
        consul_url: str,
        aws_url: str,
        workdir: Path,
        extra_env: Optional[dict[str, str]] = None,
        python: str = sys.executable,
    ) -> None:
        self.impl = impl
        self.runtime = runtime
        self.log = workdir / f"registrator-{impl}-{uuid.uuid4().hex[:6]}.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
        }
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": runtime.address,
                "AWS_LAMBDA_FUNCTION_NAME": "consul-lambda-registrator",
                "AWS_ENDPOINT_URL": aws_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "CONSUL_HTTP_ADDR": consul_url,
                "NODE_NAME": NODE,
                "LOG_LEVEL": "info",
            }
        )
        env.update(extra_env or {})
        if impl == "ours":
            self.argv = [
                python,
                str(BENCH / "runtime_client.py"),
                "consul_lambda_sync.host.handler.handler",
            ]
        elif impl == "upstream":
            binary = upstream_binary()
            if binary is None:
                raise RuntimeError("no upstream registrator binary (see bench/upstream/build.sh)")
            self.argv = [binary]
        else:
            raise ValueError(impl)
        self.env = env
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> Registrator:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(
            f"{self.impl} registrator polling the runtime API",
            self.runtime.polling.is_set,
            120,
            self.proc,
            self.log,
        )
        return self

    def invoke(self, event: Any, timeout: float) -> tuple[InvokeResult, float]:
        """One invocation: (result, CPU seconds the registrator process used)."""
        assert self.proc is not None
        before = cpu_seconds(self.proc.pid)
        proc = self.proc

        def alive() -> Optional[str]:
            if proc.poll() is None:
                return None
            return f"the registrator exited with {proc.returncode}: {tail(self.log, 500)}"

        result = self.runtime.invoke(event, timeout, alive)
        return result, cpu_seconds(self.proc.pid) - before

    def stop(self) -> None:
        stop_process(self.proc)


# -- convergence ------------------------------------------------------------------------------


def lambda_args(entry: dict[str, Any]) -> Optional[dict[str, Any]]:
    for ext in entry.get("EnvoyExtensions") or []:
        if ext.get("Name") == "builtin/aws/lambda":
            return {str(k).lower(): v for k, v in (ext.get("Arguments") or {}).items()}
    return None


def compare(consul: ConsulAgent, desired: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Consul (read directly) against what the tags ask for. Invocation mode is
    compared case-insensitively (upstream writes it upper-case, we lower-case)."""
    services = consul.services()
    entries = consul.entries()
    missing = sorted(n for n in desired if n not in services or n not in entries)
    extra = sorted(n for n in services if n not in desired)
    stale_entries = sorted(
        n for n, e in entries.items() if n not in desired and lambda_args(e) is not None
    )
    drifted = []
    for name, want in desired.items():
        e = entries.get(name)
        args = lambda_args(e) if e else None
        if args is None:
            continue
        if (
            args.get("arn") != want["arn"]
            or bool(args.get("payloadpassthrough")) != want["payloadPassthrough"]
            or str(args.get("invocationmode", "")).lower() != want["invocationMode"]
        ):
            drifted.append(name)
    return {
        "converged": not (missing or extra or drifted or stale_entries),
        "desired": len(desired),
        "missing": len(missing),
        "extra": len(extra),
        "stale_entries": len(stale_entries),
        "drifted": len(drifted),
        "examples": (missing[:3] + extra[:3] + drifted[:3] + stale_entries[:3]),
    }


def minimal_writes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> int:
    """Fewest Consul writes that take ``before`` to ``after``: a new service is a
    config entry + a registration, a gone one a deregistration + a config delete,
    a changed one a config entry write."""
    writes = 0
    for name in before.keys() | after.keys():
        if name not in before or name not in after:
            writes += 2
        elif before[name] != after[name]:
            writes += 1
    return writes


# Consul's default limit of operations in one /v1/txn request.
TXN_MAX_OPS = 128


def minimal_txn_writes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> int:
    """Fewest Consul writes when catalog changes go through ``/v1/txn`` (ours): one
    config entry write (or delete) per new, changed or gone service, plus
    ceil(catalog operations / 128) transactions; the first transaction of a cold sync
    also creates the node (one more operation)."""
    config = catalog = 0
    for name in before.keys() | after.keys():
        if name not in before or name not in after:
            config += 1
            catalog += 1
        elif before[name] != after[name]:
            config += 1
    if catalog and not before:
        catalog += 1  # the node
    return config + math.ceil(catalog / TXN_MAX_OPS)


def make_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"cls-{name}-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
