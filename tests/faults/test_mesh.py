"""Mesh wiring (issue 18, docs/mesh.md) on a real Consul, through both hosts (the
Python handler in this process, the Node handler in a fresh ``node`` process).

- A person's edit of the terminating-gateway entry that lands between the
  registrator's read and its write is not lost: the consul proxy's ``side`` rule
  writes the person's version of the entry straight to Consul just before it
  forwards the registrator's ``PUT /v1/config?cas=N``, so that write misses
  (Consul answers ``false``); the engine reads the entry again, merges again and
  writes with the new index. The person's item and the managed service are both
  listed, and the invocation succeeds without a conflict.
- ``EXPORTED_SERVICES_PARTITIONS`` on open-source Consul is one configuration
  error (``exported_partitions_require_enterprise``) before any request.

The lifecycle (created, extended, shrunk, a person's items kept, exported to a
peer) is the shared scenario tests/e2e/scenarios/11-mesh-wiring.json, which both
hosts' e2e suites run and tests/faults/test_transcript.py compares at the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cls_support as sup
import pytest

from test_transcript import HOSTS, RUNNERS, host_env, one_function_world

if TYPE_CHECKING:
    from collections.abc import Iterator

GATEWAY = "lambda-gateway"
NAME = "meshed"
THEIRS = {
    "Kind": "terminating-gateway",
    "Name": GATEWAY,
    "Meta": {"owner": "network-team"},
    "Services": [{"Name": "legacy-db", "CAFile": "/etc/ssl/db-ca.pem"}],
}


@pytest.fixture
def servers(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]]:
    one_function_world(consul, (consul_proxy, aws_proxy), moto, NAME)
    yield consul, consul_proxy, aws_proxy
    consul_proxy.clear_faults()
    consul.clean()


def gateway_writes(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for e in transcript
        if e["method"] == "PUT"
        and e["path"] == "/v1/config"
        and (e.get("body") or {}).get("Kind") == "terminating-gateway"
    ]


@pytest.mark.parametrize("host", HOSTS)
def test_a_concurrent_edit_of_the_gateway_entry_is_merged_not_lost(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]
) -> None:
    consul, consul_proxy, aws_proxy = servers
    # The gateway's entry exists (a person made it); the registrator does not create it.
    consul.put("/v1/config", {"Kind": "terminating-gateway", "Name": GATEWAY, "Services": []})
    observed = consul.get(f"/v1/config/terminating-gateway/{GATEWAY}")
    assert observed is not None
    env = host_env(consul_proxy.url, aws_proxy.url, TERMINATING_GATEWAY_NAME=GATEWAY)
    consul_proxy.faults(
        [
            {
                "match": "^PUT /v1/config$",
                "body": '"Kind":"terminating-gateway"',
                "action": "side",
                "side": {"method": "PUT", "path": "/v1/config", "body": THEIRS},
                "times": 1,
            }
        ]
    )
    consul_proxy.clear_transcript()
    run = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    consul_proxy.clear_faults()
    transcript = consul_proxy.transcript()

    # The race happened: the first write carried the index read before the person's edit.
    writes = gateway_writes(transcript)
    assert [w.get("fault") for w in writes] == ["side", None], writes
    assert writes[0]["query"].get("cas") == str(observed["ModifyIndex"]), writes[0]
    assert writes[1]["query"].get("cas") not in (None, "0", writes[0]["query"].get("cas"))
    rereads = [
        e
        for e in transcript
        if e["method"] == "GET" and e["path"] == f"/v1/config/terminating-gateway/{GATEWAY}"
    ]
    assert len(rereads) == 2, "read once to plan, once again after the miss"

    # Both the person's edit and the managed service are in the entry.
    entry = consul.get(f"/v1/config/terminating-gateway/{GATEWAY}")
    assert entry is not None
    assert entry["Services"] == [*THEIRS["Services"], {"Name": NAME}], entry
    assert entry.get("Meta") == THEIRS["Meta"], entry
    result = run["result"]
    assert not run["raised"], result
    assert result["verdict"] == "ok", result
    assert result["operations"]["conflicts"] == 0, result["operations"]
    assert not result.get("failures"), result["failures"]

    # In step now: the next sync writes nothing.
    consul_proxy.clear_transcript()
    again = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert not again["raised"], again["result"]
    assert again["result"]["requests"]["consul"]["writes"] == 0, again["result"]["requests"]


@pytest.mark.parametrize("host", HOSTS)
def test_exported_partitions_on_open_source_consul_are_one_config_error(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]
) -> None:
    _, consul_proxy, aws_proxy = servers
    env = host_env(
        consul_proxy.url,
        aws_proxy.url,
        EXPORTED_SERVICES_PEERS="west",
        EXPORTED_SERVICES_PARTITIONS="team-a",
    )
    consul_proxy.clear_transcript()
    run = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert run["raised"], run["result"]
    result = run["result"]
    assert result["verdict"] == "invalid_config", result
    errors = [(e["code"], e.get("key"), e.get("value")) for e in result["failure"]["errors"]]
    assert errors == [
        (
            "exported_partitions_require_enterprise",
            "EXPORTED_SERVICES_PARTITIONS",
            "team-a",
        )
    ], errors
    assert "ENTERPRISE" in result["failure"]["errors"][0]["hint"]
    assert consul_proxy.transcript() == [], "nothing is read or written"
