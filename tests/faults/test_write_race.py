"""The write race of issue 13, on a real Consul: a service-defaults entry that another
writer creates between the registrator's read and its write must stand.

The consul proxy's ``side`` rule creates the entry straight in Consul just before it
forwards the registrator's ``PUT /v1/config?cas=0`` for that service, so the entry
is absent when the engine observes and present when its create-only write lands:
Consul answers ``false``, the other writer's entry is left as it is, and the result
reports the entry's write and the registration waiting for it as ``conflict``s (the
invocation does not fail). The next sync sees an entry without the Lambda extension:
a ``foreign_config_entry`` error, no write. Both hosts (the Python handler in this
process, the Node handler in a fresh ``node`` process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cls_support as sup
import pytest

from test_transcript import HOSTS, RUNNERS, host_env, one_function_world

if TYPE_CHECKING:
    from collections.abc import Iterator

NAME = "racer"
THEIRS = {
    "Kind": "service-defaults",
    "Name": NAME,
    "Protocol": "grpc",
    "Meta": {"owner": "another-writer"},
}


@pytest.fixture
def servers(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]]:
    one_function_world(consul, (consul_proxy, aws_proxy), moto, NAME)
    yield consul, consul_proxy, aws_proxy
    consul_proxy.clear_faults()


def failures_of(result: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(f["kind"], f["service"]["name"]): f["status"] for f in result.get("failures") or []}


@pytest.mark.parametrize("host", HOSTS)
def test_entry_created_between_read_and_write_is_left_alone(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]
) -> None:
    consul, consul_proxy, aws_proxy = servers
    env = host_env(consul_proxy.url, aws_proxy.url)
    run = RUNNERS[host]
    consul_proxy.faults(
        [
            {
                "match": "^PUT /v1/config$",
                "uri": r"[?&]cas=0(&|$)",
                "body": f'"Name":"{NAME}"',
                "action": "side",
                "side": {"method": "PUT", "path": "/v1/config", "body": THEIRS},
                "times": 1,
            }
        ]
    )
    consul_proxy.clear_transcript()
    first = run(env, sup.schedule_event(), sup.FUNCTION_ARN)
    consul_proxy.clear_faults()

    # The race happened: our create-only write reached Consul after theirs.
    raced = [e for e in consul_proxy.transcript() if e.get("fault") == "side"]
    assert [e["query"].get("cas") for e in raced] == ["0"], raced
    entry = consul.get(f"/v1/config/service-defaults/{NAME}")
    assert entry is not None
    index = entry["ModifyIndex"]
    # Their entry stands, unchanged: no Lambda extension of ours, their protocol and meta.
    assert entry["Protocol"] == "grpc", entry
    assert entry.get("Meta") == THEIRS["Meta"], entry
    assert not entry.get("EnvoyExtensions"), entry
    # Reported as a check-and-set conflict, not as a failure of the invocation.
    result = first["result"]
    assert not first["raised"], result
    assert result["ok"] is True, result
    assert result["verdict"] == "ok", result
    # The entry's write and the registration that waits for it: both left as they are.
    assert result["operations"]["conflicts"] == 2, result["operations"]
    assert failures_of(result) == {
        ("upsertConfigEntry", NAME): "conflict",
        ("registerService", NAME): "conflict",
    }, result["failures"]
    assert result["requests"]["consul"]["writes"] == 1, result["requests"]

    # The next sync sees an entry that is not ours (no Lambda extension): a
    # foreign_config_entry conflict; it overwrites nothing.
    second = run(env, sup.schedule_event(), sup.FUNCTION_ARN)
    after = consul.get(f"/v1/config/service-defaults/{NAME}")
    assert after is not None
    assert after["ModifyIndex"] == index, after
    assert after["Protocol"] == "grpc", after
    assert not after.get("EnvoyExtensions"), after
    assert not second["raised"], second
    errors = [(e["code"], e.get("value")) for e in second["result"]["errors"]]
    assert errors == [("foreign_config_entry", NAME)], second["result"]["errors"]
    assert second["result"]["requests"]["consul"]["writes"] == 0, second["result"]["requests"]
    assert NAME not in consul.services(), "registered without its service-defaults entry"
    writes = [
        e
        for e in consul_proxy.transcript()
        if e["method"] != "GET" and "/v1/config" in e["path"] and NAME in str(e)
    ]
    assert len(writes) == 1, f"a write to {NAME}'s entry besides the raced one: {writes}"


@pytest.mark.parametrize("host", HOSTS)
def test_a_registration_that_lost_the_race_leaves_no_entry_of_ours(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy]
) -> None:
    """Someone registers the name on the registrator's node between the read and the
    catalog transaction: their service stands, and the entry this sync wrote for the
    name just before is removed again (check-and-set at the index it re-read), or
    every mesh call to their service would invoke the function (issue 24, item 3)."""
    consul, consul_proxy, aws_proxy = servers
    env = host_env(consul_proxy.url, aws_proxy.url)
    theirs = {
        "Node": sup.NODE,
        "Address": "127.0.0.1",
        "NodeMeta": {"external-node": "true", "external-probe": "true"},
        "Service": {"ID": NAME, "Service": NAME, "Tags": ["theirs"], "Port": 8080},
    }
    consul_proxy.faults(
        [
            {
                "match": "^PUT /v1/txn$",
                "body": f'"Service":"{NAME}"',
                "action": "side",
                "side": {"method": "PUT", "path": "/v1/catalog/register", "body": theirs},
                "times": 1,
            }
        ]
    )
    consul_proxy.clear_transcript()
    run = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    consul_proxy.clear_faults()
    raced = [e for e in consul_proxy.transcript() if e.get("fault") == "side"]
    assert len(raced) == 1, raced
    # Their service stands; no entry of ours sends its traffic to the function.
    assert consul.services()[NAME]["Tags"] == ["theirs"]
    assert consul.get(f"/v1/config/service-defaults/{NAME}") is None
    cleanup = [
        e
        for e in consul_proxy.transcript()
        if e["method"] == "DELETE" and e["path"] == f"/v1/config/service-defaults/{NAME}"
    ]
    assert len(cleanup) == 1, cleanup
    assert cleanup[0]["query"].get("cas") not in (None, "0"), cleanup
    result = run["result"]
    assert failures_of(result).get(("registerService", NAME)) == "conflict", result["failures"]
    consul.put("/v1/catalog/deregister", {"Node": sup.NODE, "ServiceID": NAME})
