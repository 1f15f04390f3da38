"""Retries of Consul requests, decided by the engine and carried by the host, against a
local HTTP server that fails on purpose.

Consul itself cannot be made to answer 429 or 503 on demand, so a small server stands in
for it: it answers the first requests of each path with an error, then a plausible Consul
answer. AWS is stubbed in-process (one tagged function). Retries must cover reads and
writes, honour Retry-After, and give up with a clear error; 4xx answers are final.
The engine counts every attempt it sends (a retry is a request on the wire).
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from consul_lambda_sync.host.handler import run
from consul_lambda_sync.host.log import JsonLogger
from consul_lambda_sync.host.transport import Aws, Carrier, Consul

from harness import ENABLED

if TYPE_CHECKING:
    from collections.abc import Iterator

    from consul_lambda_sync import Answer, Start, SyncResult
    from consul_lambda_sync._types import AwsCall

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
# What Consul answers once the planned failures are used up.
ANSWERS = {
    "/v1/catalog/datacenters": (200, b'["dc1"]'),
    # The names other nodes use (none).
    "/v1/catalog/services": (200, b"{}"),
    "/v1/catalog/node-services/lambdas": (404, b""),
    "/v1/config/service-defaults": (200, b"[]"),
    "/v1/config": (200, b"true"),
    "/v1/txn": (200, b'{"Results": [], "Errors": null}'),
}


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
            status, body = ANSWERS.get(path, (404, b""))
            self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_PUT = _answer
    do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StubAws(Aws):
    """Lists one tagged function."""

    def __init__(self) -> None:
        super().__init__("us-east-1", session=object())

    def call(self, rid: int, req: AwsCall) -> Answer:
        assert req["operation"] == "GetResources", req
        tags = [{"Key": ENABLED, "Value": "true"}]
        page = {"ResourceTagMappingList": [{"ResourceARN": ARN, "Tags": tags}]}
        return {"id": rid, "ok": page}


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


def sync(address: str) -> SyncResult:
    env = {"CONSUL_HTTP_ADDR": address, "DATACENTER": "dc1", "NODE_NAME": "lambdas"}
    start: Start = {"env": env, "region": "us-east-1", "accountId": "123456789012", "seed": 7}
    log = JsonLogger(stream=io.StringIO())
    return run(start, Carrier(Consul({"consulHttpAddr": address}), StubAws(), log), log)


def test_reads_and_writes_are_retried_on_5xx(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [503, 502], "/v1/config/service-defaults": [500]}
    result = sync(flaky)
    assert result["ok"], result["message"]
    assert result["operations"]["ok"] == 2
    puts = [s for s in FlakyHandler.seen if s[0] == "PUT" and s[1] == "/v1/config"]
    assert len(puts) == 3
    # Every attempt is counted: 4 reads (datacenters, node services, service-defaults,
    # names on other nodes) + 1 retried read; 3 config PUTs + 1 transaction.
    assert result["requests"]["consul"] == {"reads": 5, "writes": 4, "transactions": 1}


def test_429_honours_retry_after(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/txn": [429]}
    assert sync(flaky)["ok"]
    (first, second) = [t for _, p, t in FlakyHandler.seen if p == "/v1/txn"]
    assert second - first >= 0.9


def test_gives_up_with_the_status(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [503] * 10}
    result = sync(flaky)
    assert not result["ok"]
    assert result["verdict"] == "failed"
    # The handler's result is compact: the failed and skipped outcomes are its failures.
    (failed,) = [o for o in result["failures"] if o["status"] == "failed"]
    assert "503" in failed.get("error", "")
    assert "try again" in failed.get("error", "")
    assert len([s for s in FlakyHandler.seen if s[1] == "/v1/config"]) == 5


def test_client_errors_are_not_retried(flaky: str) -> None:
    FlakyHandler.plan = {"/v1/config": [403]}
    result = sync(flaky)
    assert result["operations"]["failed"] == 1
    assert len([s for s in FlakyHandler.seen if s[1] == "/v1/config"]) == 1


def test_connection_refused_is_retried_then_unreachable() -> None:
    result = sync("http://127.0.0.1:9")
    assert result["verdict"] == "unreachable"
    assert result["exitCode"] == 4
    assert "Connection refused" in result["message"]
    assert result["requests"]["consul"]["writes"] == 0
    assert json.dumps(result)  # JSON-safe
