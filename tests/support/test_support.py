"""Checks of cls_support itself: the serve command the Node tests use, the
three-server Consul cluster (a leader, losing it, getting a server back), and the
proxy's transcript (nothing secret in it)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pytest
import requests

from cls_support import ConsulCluster, Proxy, consul_binary, make_workdir, remove_workdir

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def serve() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cls_support", "serve", "consul-acl", "moto", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_prints_one_json_line_and_stops_when_stdin_closes(
    serve: subprocess.Popen[str],
) -> None:
    assert serve.stdout is not None
    assert serve.stdin is not None
    info = json.loads(serve.stdout.readline())
    assert sorted(info) == ["consul-acl", "moto"]
    consul, moto = info["consul-acl"], info["moto"]
    assert requests.get(moto["endpoint"] + "/moto-api/", timeout=10).ok
    # Default deny: nothing without a token; the registrator's token reads its node.
    services = consul["address"] + "/v1/catalog/node-services/lambdas"
    assert requests.get(consul["address"] + "/v1/acl/tokens", timeout=10).status_code == 403
    for token in (consul["registratorToken"], consul["managementToken"]):
        r = requests.get(services, headers={"X-Consul-Token": token}, timeout=10)
        assert r.status_code in (200, 404), r.text
    r = requests.get(
        consul["address"] + "/v1/acl/tokens",
        headers={"X-Consul-Token": consul["registratorToken"]},
        timeout=10,
    )
    assert r.status_code == 403  # least privilege: no ACL read
    serve.stdin.close()
    assert serve.wait(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(moto["endpoint"] + "/moto-api/", timeout=5)


def test_cluster_elects_a_new_leader_and_takes_a_server_back() -> None:
    workdir = make_workdir("cluster-test")
    cluster = ConsulCluster(consul_binary(), workdir).start()
    try:
        leader = cluster.wait_leader()
        cluster.servers[(leader.index + 1) % 3].put("/v1/kv/probe", "before")
        cluster.kill(leader.index)
        survivor = cluster.wait_ready()
        assert survivor.index != leader.index
        assert survivor.get("/v1/kv/probe")[0]["Key"] == "probe"
        cluster.restart(leader.index)
        back = cluster.servers[leader.index]
        assert back.running
        assert len(back.get("/v1/status/peers")) == 3
    finally:
        cluster.stop()
        remove_workdir(workdir)


class _Echo(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_proxy_transcript_records_requests_and_no_secret() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}"
    work = make_workdir("proxy-log")
    consul, aws = Proxy("consul", target, work).start(), Proxy("aws", target, work).start()
    try:
        s = requests.Session()
        s.put(
            consul.url + "/v1/config",
            params={"cas": "0", "dc": "dc 1"},
            json={"Kind": "service-defaults", "Name": "a"},
            headers={"X-Consul-Token": "s3cret-token"},
            timeout=10,
        ).raise_for_status()
        s.get(consul.url + "/v1/catalog/node-services/my%2Fnode", timeout=10).raise_for_status()
        s.post(
            aws.url + "/",
            data=json.dumps({"Name": "/p", "Value": "PRIVATE KEY", "Type": "SecureString"}),
            headers={"X-Amz-Target": "AmazonSSM.PutParameter"},
            timeout=10,
        ).raise_for_status()
        log = consul.transcript()
        assert log == [
            {
                "method": "PUT",
                "path": "/v1/config",
                "query": {"cas": "0", "dc": "dc 1"},
                "body": {"Kind": "service-defaults", "Name": "a"},
                "op": "PUT /v1/config",
            },
            {
                "method": "GET",
                "path": "/v1/catalog/node-services/my%2Fnode",
                "query": {},
                "body": None,
                "op": "GET /v1/catalog/node-services/:node",
            },
        ]
        assert "s3cret-token" not in json.dumps(log)
        (put,) = aws.transcript()
        assert put["op"] == "PutParameter"
        assert put["body"] == {"Name": "/p", "Value": "<redacted>", "Type": "SecureString"}
        consul.clear_transcript()
        assert consul.transcript() == []
    finally:
        consul.stop()
        aws.stop()
        server.shutdown()
        remove_workdir(work)
