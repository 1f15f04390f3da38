"""Bounds (issue 24, item 4), on a real Consul through both hosts, each in a fresh
process whose peak RSS is measured (``wait4``):

- an answer larger than the engine's cap for its request (``maxBytes``) is not read
  on: the host answers ``answer_too_large``, the sync stops naming the request, and
  nothing is written — whether Consul's ``Content-Length`` says so up front or the
  body only grows (chunked);
- 100,000 managed-tagged services without entries on the registrator's node (one
  crafted ``node-services`` answer, about 33 MB) sync within 256 MiB, the memory the
  construct gives the function, and their 100,000 ``orphan_not_owned`` warnings are
  one log record with a count and the first names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cls_support as sup
import pytest

from test_transcript import HOSTS, NODE_HOST, SEED, host_env, one_function_world, run_python

if TYPE_CHECKING:
    from collections.abc import Iterator

PYTHON_HOST = Path(__file__).resolve().parent / "python_host.py"
MIB = 1 << 20
# The engine's cap for GET /v1/catalog/node-services (core/src/lower/request.rs).
LIST_CAP = 128 * MIB
LAMBDA_MEMORY = 256 * MIB
ORPHANS = 100_000


@pytest.fixture
def servers(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]]:
    one_function_world(consul, (consul_proxy, aws_proxy), moto, "solo")
    yield consul, consul_proxy, aws_proxy
    consul_proxy.clear_faults()
    consul.clean()


def measured(host: str, env: dict[str, str]) -> tuple[dict[str, Any], int, list[str]]:
    """One scheduled sync by ``host`` in a fresh process: its outcome, its peak RSS in
    bytes and its log lines."""
    if host == "python":
        cmd = [sys.executable, str(PYTHON_HOST)]
    else:
        node = shutil.which("node")
        assert node, "node is not installed"
        cmd = [node, str(NODE_HOST)]
    payload = {
        "repo": str(sup.REPO),
        "event": sup.schedule_event(),
        "context": {"invokedFunctionArn": sup.FUNCTION_ARN},
        "seed": SEED,
    }
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin
    assert proc.stdout
    assert proc.stderr
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read())),  # type: ignore[union-attr]
    ]
    for r in readers:
        r.start()
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    logs = b"".join(err).decode().splitlines()
    lines = b"".join(out).decode().strip().splitlines()
    assert proc.returncode == 0, f"{host} exited {proc.returncode}:\n{logs[-20:]}"
    assert lines, f"{host} printed nothing:\n{logs[-20:]}"
    return json.loads(lines[-1]), usage.ru_maxrss * 1024, logs


def outcome(run: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(raised, result) of a measured run."""
    if "error" in run:
        return True, run["error"]["result"]
    return False, run["result"]


def writes(transcript: list[dict[str, Any]]) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in transcript if e["method"] != "GET"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("host", HOSTS)
def test_an_answer_over_the_cap_stops_the_sync_naming_the_request_and_writes_nothing(
    host: str, chunked: bool, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]
) -> None:
    consul, consul_proxy, aws_proxy = servers
    consul_proxy.faults(
        [
            {
                "match": "^GET /v1/catalog/node-services/",
                "action": "answer",
                "size": LIST_CAP + 1,
                "chunked": chunked,
            }
        ]
    )
    consul_proxy.clear_transcript()
    run, rss, _ = measured(host, host_env(consul_proxy.url, aws_proxy.url))
    raised, result = outcome(run)
    assert raised, result
    failure = result["failure"]
    assert failure["code"] == "answer_too_large", failure
    assert "GET /v1/catalog/node-services/lambdas" in failure["message"], failure
    assert str(LIST_CAP) in failure["message"], failure
    assert writes(consul_proxy.transcript()) == []
    assert consul.services() == {}
    # The host stopped reading at the cap: it never held the whole answer twice.
    assert rss < LIST_CAP * 2, rss
    print(f"\n{host} {'chunked' if chunked else 'content-length'}: peak RSS {rss / MIB:.0f} MiB")


def crafted_node_services(consul: sup.ConsulAgent, path: Path) -> int:
    """The registrator node's real answer with ``ORPHANS`` managed-tagged services
    added (each shaped as Consul answers it); returns the file's size."""
    real = consul.get(f"/v1/catalog/node-services/{sup.NODE}")
    assert real, real
    assert real["Services"], real
    template = real["Services"][0]
    with path.open("w") as f:
        f.write('{"Node":')
        json.dump(real["Node"], f)
        f.write(',"Services":[')
        json.dump(template, f)
        for i in range(ORPHANS):
            name = f"orphan-{i:06d}"
            f.write(",")
            json.dump({**template, "ID": name, "Service": name}, f)
        f.write("]}")
    return path.stat().st_size


@pytest.mark.parametrize("host", HOSTS)
def test_100k_managed_services_without_entries_sync_within_256_mib(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy], tmp_path: Path
) -> None:
    consul, consul_proxy, aws_proxy = servers
    env = host_env(consul_proxy.url, aws_proxy.url)
    first = run_python(env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert not first["raised"], first["result"]
    size = crafted_node_services(consul, tmp_path / "node-services.json")
    assert size < LIST_CAP
    consul_proxy.faults(
        [
            {
                "match": "^GET /v1/catalog/node-services/",
                "action": "answer",
                "file": str(tmp_path / "node-services.json"),
            }
        ]
    )
    consul_proxy.clear_transcript()
    run, rss, logs = measured(host, env)
    raised, result = outcome(run)
    assert not raised, result
    assert result["verdict"] == "ok", result
    # None of them is provably ours (no entry): nothing is deregistered.
    assert writes(consul_proxy.transcript()) == []
    warnings = [json.loads(line) for line in logs if '"orphan_not_owned"' in line]
    assert len(warnings) == 1, len(warnings)
    assert warnings[0]["count"] == ORPHANS, warnings[0]
    assert warnings[0]["first"].startswith("orphan-000000, orphan-000001"), warnings[0]
    assert len(logs) < 50, len(logs)
    assert rss < LAMBDA_MEMORY, f"{host}: peak RSS {rss / MIB:.0f} MiB"
    print(
        f"\n{host}: {ORPHANS} services ({size / MIB:.0f} MiB answer): "
        f"peak RSS {rss / MIB:.0f} MiB, {len(logs)} log lines"
    )
