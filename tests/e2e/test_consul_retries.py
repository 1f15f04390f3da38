"""The Consul client's retries, against a local HTTP server that fails on purpose.

Consul itself cannot be made to answer 429 or 503 on demand, so a small server
stands in for it: it answers the first requests of each path with an error, then
200. Retries must cover reads and the plan's (idempotent) writes, honour
Retry-After, and give up with a clear error.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from consul_lambda_sync.host.consul import ConsulClient, ConsulError

if TYPE_CHECKING:
    from collections.abc import Iterator


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    # path -> statuses to answer before succeeding
    plan: ClassVar[dict[str, list[int]]] = {}
    seen: ClassVar[list[tuple[str, str, float]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        FlakyHandler.seen.append((self.command, path, time.monotonic()))
        pending = FlakyHandler.plan.get(path) or []
        if pending:
            status = pending.pop(0)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            body = b"try again"
        else:
            self.send_response(200)
            body = json.dumps(True).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_PUT = _answer
    do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    FlakyHandler.plan = {}
    FlakyHandler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_reads_and_writes_are_retried_on_5xx(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [503, 502], "/v1/catalog/datacenters": [500]}
    client = ConsulClient(flaky, retries=4, backoff=0.01)
    assert client.send({"method": "PUT", "path": "/v1/config", "body": {"Kind": "x"}}) is True
    assert client.request("GET", "/v1/catalog/datacenters") is True
    puts = [s for s in FlakyHandler.seen if s[0] == "PUT"]
    assert len(puts) == 3
    # The host counts one logical request each.
    assert client.reads == 1
    assert client.writes == 1


def test_429_honours_retry_after(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/catalog/register": [429]}
    client = ConsulClient(flaky, retries=2, backoff=0.01)
    client.send({"method": "PUT", "path": "/v1/catalog/register", "body": {}})
    (first, second) = [t for _, p, t in FlakyHandler.seen if p == "/v1/catalog/register"]
    assert second - first >= 0.9


def test_gives_up_with_the_status(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [503] * 10}
    client = ConsulClient(flaky, retries=2, backoff=0.01)
    with pytest.raises(ConsulError) as err:
        client.send({"method": "PUT", "path": "/v1/config", "body": {}})
    assert err.value.status == 503
    assert not err.value.unreachable
    assert "PUT /v1/config returned 503: try again" in str(err.value)
    assert len(FlakyHandler.seen) == 3


def test_client_errors_are_not_retried(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [403]}
    client = ConsulClient(flaky, retries=3, backoff=0.01)
    with pytest.raises(ConsulError) as err:
        client.send({"method": "PUT", "path": "/v1/config", "body": {}})
    assert err.value.status == 403
    assert len(FlakyHandler.seen) == 1


def test_connection_refused_is_retried_then_unreachable() -> None:
    client = ConsulClient("http://127.0.0.1:9", retries=2, backoff=0.01, timeout=1)
    with pytest.raises(ConsulError) as err:
        client.request("GET", "/v1/agent/self")
    assert err.value.unreachable
    assert "Connection refused" in str(err.value)
