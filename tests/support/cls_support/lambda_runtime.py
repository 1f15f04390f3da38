"""A Lambda Runtime API emulator (:class:`RuntimeAPI`) and a registrator process
polling it (:class:`Registrator`: our Python host through
:mod:`cls_support.runtime_client`, our Node host through ``runtime_client.js``,
upstream's Go binary through aws-lambda-go). ``invoke`` times one invocation from
the event's delivery to the posted response."""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

from .constants import FUNCTION_ARN, NODE, REGION
from .procs import REPO, cache_dir, cpu_seconds, peak_rss_mb, stop_process, tail, wait_for


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
        self.lock = threading.Lock()
        self.polls = 0  # GET .../next requests so far
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

            def _client_gone(self) -> bool:
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self._send(404, b'{"errorMessage":"unknown path"}')
                    return
                with api.lock:
                    api.polls += 1
                api.polling.set()
                inv = None
                while inv is None:
                    try:
                        inv = api.pending.get(timeout=0.2)
                    except queue.Empty:
                        if self._client_gone():
                            # A stopped registrator's poll: it must not take the next event.
                            api.polling.clear()
                            return
                api.polling.clear()
                if self._client_gone():
                    api.pending.put(inv)  # for the next live poll
                    return
                inv.delivered_at = time.monotonic()
                deadline = int((time.time() + api.deadline_seconds) * 1000)
                try:
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
                except OSError:
                    inv.delivered_at = 0.0
                    api.pending.put(inv)

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

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A stopped registrator drops its keep-alive connection: not an error.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
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


#: The registrators :class:`Registrator` runs; ``ours`` is the Python host's old name.
IMPLS = ("python", "node", "upstream")
ALIASES = {"ours": "python"}

NODE_CLIENT = Path(__file__).resolve().parent / "runtime_client.js"
NODE_HANDLER = REPO / "bindings" / "node" / "host" / "index.js"


class Registrator:
    """A registrator process polling a :class:`RuntimeAPI`: ``python`` (alias
    ``ours``), ``node`` or ``upstream``."""

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
        impl = ALIASES.get(impl, impl)
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
        if impl == "python":
            self.argv = [
                python,
                "-m",
                "cls_support.runtime_client",
                "consul_lambda_sync.host.handler.handler",
            ]
        elif impl == "node":
            self.argv = ["node", str(NODE_CLIENT), str(NODE_HANDLER), "handler"]
        elif impl == "upstream":
            binary = upstream_binary()
            if binary is None:
                raise RuntimeError("no upstream registrator binary (see bench/upstream/build.sh)")
            self.argv = [binary]
        else:
            raise ValueError(impl)
        self.env = env
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start_seconds = 0.0

    def start(self) -> Registrator:
        """Starts the process and waits until it polls for an event;
        ``start_seconds`` is how long that took."""
        t0 = time.monotonic()
        polls = self.runtime.polls
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(
            f"{self.impl} registrator polling the runtime API",
            lambda: self.runtime.polls > polls,
            120,
            self.proc,
            self.log,
        )
        self.start_seconds = time.monotonic() - t0
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

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (start-up included)."""
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def peak_rss_mb(self) -> float:
        """The process's peak resident set so far (VmHWM), in MiB."""
        return peak_rss_mb(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        stop_process(self.proc)
