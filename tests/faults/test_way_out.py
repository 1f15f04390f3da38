"""Every stop says the way out (issue 24, item 8), on a real Consul (faults where a
crafted answer is needed) through both handlers, each in a fresh process, and
through the command line's text output.

For each stop — ``acl_denied`` (upstream's documented policy without DATACENTER),
``acl_filtered``, the mass-deregistration stop, a name Consul has on another node,
a configuration error, and (command line only: the handlers apply no plan files)
a stale reviewed plan — the code and the hint appear in the result
(``failure.code``, ``failure.hint``, ``message``), in the handler's error, and in
its final log record ("sync finished", fields ``code`` and ``hint``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable

import cls_support as sup
import pytest

from test_bounds import measured, outcome

from test_transcript import HOSTS, client, host_env, one_function_world, run_python

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Servers = tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]


@pytest.fixture
def servers(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[Servers]:
    one_function_world(consul, (consul_proxy, aws_proxy), moto, "solo")
    yield consul, consul_proxy, aws_proxy, moto
    consul_proxy.clear_faults()
    consul.put("/v1/catalog/deregister", {"Node": "ext-node"})
    consul.clean()


def env_of(s: Servers, **extra: str) -> dict[str, str]:
    return host_env(s[1].url, s[2].url, **extra)


# Each stop: how to bring it about (returns the environment), its code, and a
# piece of its hint that names the way out.


def acl_denied(s: Servers) -> dict[str, str]:
    s[1].faults([{"match": "^GET /v1/agent/self$", "action": "status", "status": 403}])
    return env_of(s)


def acl_filtered(s: Servers) -> dict[str, str]:
    s[1].faults(
        [
            {
                "match": "^GET /v1/catalog/services$",
                "action": "answer",
                "file": str(sup.REPO / "tests" / "faults" / "empty-object.json"),
                "headers": {"X-Consul-Results-Filtered-By-ACLs": "true"},
            }
        ]
    )
    return env_of(s)


def mass_deregistration(s: Servers) -> dict[str, str]:
    lam = client("lambda", s[3])
    role = lam.get_function(FunctionName="solo")["Configuration"]["Role"]
    for i in range(11):
        lam.create_function(
            FunctionName=f"many-{i:02d}",
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": sup.function_zip()},
            Tags={sup.ENABLED: "true"},
        )
    env = env_of(s)
    first = run_python(env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert not first["raised"], first["result"]
    for i in range(7):
        lam.delete_function(FunctionName=f"many-{i:02d}")
    return env


def name_on_other_node(s: Servers) -> dict[str, str]:
    s[0].put(
        "/v1/catalog/register",
        {"Node": "ext-node", "Address": "10.0.0.9", "Service": {"Service": "solo", "Port": 443}},
    )
    return env_of(s)


def invalid_config(s: Servers) -> dict[str, str]:
    return env_of(s, PAGE_SIZE="1000")


STOPS: list[tuple[str, Callable[[Servers], dict[str, str]], str, str]] = [
    ("acl_denied", acl_denied, "acl_denied", "set DATACENTER"),
    ("acl_filtered", acl_filtered, "acl_filtered", 'node_prefix "" { policy = "read" }'),
    (
        "mass_deregistration",
        mass_deregistration,
        "mass_deregistration_blocked",
        "ALLOW_MASS_DEREGISTRATION",
    ),
    ("name_on_other_node", name_on_other_node, "name_on_other_node", "rename the function"),
    ("invalid_config", invalid_config, "invalid_config", "PAGE_SIZE"),
]


def finished(logs: list[str]) -> dict[str, Any]:
    records: list[dict[str, Any]] = [json.loads(line) for line in logs if line.startswith("{")]
    last = [r for r in records if r.get("msg") == "sync finished"]
    assert last, logs[-10:]
    return last[-1]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(("stop", "make", "code", "way_out"), STOPS, ids=[s[0] for s in STOPS])
def test_every_stop_says_its_code_and_the_way_out_in_both_handlers(  # noqa: PLR0917
    host: str,
    stop: str,
    make: Callable[[Servers], dict[str, str]],
    code: str,
    way_out: str,
    servers: Servers,
) -> None:
    env = make(servers)
    run, _, logs = measured(host, env)
    raised, result = outcome(run)
    assert raised, result
    failure = result["failure"]
    assert failure["code"] == code, failure
    assert way_out in failure["hint"] or any(
        way_out in e.get("hint", "") + e.get("key", "") for e in failure.get("errors") or []
    ), failure
    # The result's message, the error the handler raised, and its last record.
    for text in (result["message"], run["error"]["message"]):
        assert f"[{code}]" in text or f"[{failure['errors'][0]['code']}]" in text, text
        assert way_out in text, text
    record = finished(logs)
    assert record["code"] == code, record
    assert record["hint"] == failure["hint"], record
    if stop == "name_on_other_node":
        assert "node ext-node in datacenter dc1" in failure["message"], failure
        consul = servers[0]
        assert "solo" not in consul.services()
        assert "solo" not in consul.entries()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The command line at its default level (no log records on stderr)."""
    env = {k: v for k, v in env.items() if k != "LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "consul_lambda_sync.host", *args],
        env={**env, "AWS_REGION": sup.REGION},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(("stop", "make", "code", "way_out"), STOPS, ids=[s[0] for s in STOPS])
def test_every_stop_says_its_code_and_the_way_out_on_the_command_line(
    stop: str,
    make: Callable[[Servers], dict[str, str]],
    code: str,
    way_out: str,
    servers: Servers,
) -> None:
    env = make(servers)
    proc = cli(env, "sync")
    assert proc.returncode != 0, proc.stdout
    text = proc.stderr
    assert "Traceback" not in text, text
    assert f"[{code}]" in text or (code == "invalid_config" and "[invalid_config]" in text), text
    assert way_out in text, text


def test_a_stale_reviewed_plan_says_its_code_and_the_way_out(
    servers: Servers, tmp_path: Path
) -> None:
    env = env_of(servers)
    plan_file = tmp_path / "plan.json"
    made = cli(env, "plan", "--out", str(plan_file))
    assert made.returncode in (0, 2), made.stderr
    # Consul changes after the review: the plan's basis no longer holds.
    servers[0].put(
        "/v1/config",
        {"Kind": "service-defaults", "Name": "solo", "Protocol": "http"},
    )
    proc = cli(env, "sync", "--plan", str(plan_file))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[plan_stale]" in proc.stderr, proc.stderr
    assert "plan again" in proc.stderr, proc.stderr


FORGED = "rpc error\n\x1b[2K\x1b[32msynced: 9 created, 0 updated, 0 deleted\x1b[0m\n"


def test_text_from_outside_cannot_forge_lines_or_colours_on_the_command_line(
    servers: Servers, tmp_path: Path
) -> None:
    body = tmp_path / "forged.txt"
    body.write_text(FORGED)
    servers[1].faults(
        [{"match": "^GET /v1/agent/self$", "action": "answer", "status": 500, "file": str(body)}]
    )
    proc = cli(env_of(servers), "sync")
    assert proc.returncode != 0
    assert "\x1b" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "[consul_error]" in lines[0], lines
    assert "\\u{1b}[2K\\u{1b}[32msynced" in lines[0], lines


@pytest.mark.parametrize("host", HOSTS)
def test_text_from_outside_is_escaped_in_both_handlers_errors_and_records(
    host: str, servers: Servers, tmp_path: Path
) -> None:
    body = tmp_path / "forged.txt"
    body.write_text(FORGED)
    servers[1].faults(
        [{"match": "^GET /v1/agent/self$", "action": "answer", "status": 500, "file": str(body)}]
    )
    run, _, logs = measured(host, env_of(servers))
    raised, result = outcome(run)
    assert raised, result
    for text in (run["error"]["message"], result["message"], finished(logs)["message"]):
        assert "\x1b" not in text, text
        assert "\n" not in text, text
