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
- Items not ours (issue 24, item 2; docs/contract.md §11.1, §11.4): a person's
  terminating-gateway item and a person's exported-services item for names the
  registrator manages are left exactly as written across its add and its
  withdraw (a ``mesh_item_not_ours`` warning); an earlier version's item (no
  record in ``Meta``) is adopted when it is exactly what the registrator writes,
  left (with the warning) when it has more; a ``Meta`` with one pair left holds
  what fits, the rest is not listed (``mesh_record_full``), and Consul never
  refuses a write.

The lifecycle (created, extended, shrunk, a person's items kept, exported to a
peer) is the shared scenario tests/e2e/scenarios/11-mesh-wiring.json, which both
hosts' e2e suites run and tests/faults/test_transcript.py compares at the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cls_support as sup
import pytest

from test_transcript import HOSTS, RUNNERS, client, host_env, one_function_world, reset_moto

if TYPE_CHECKING:
    from collections.abc import Iterator

GATEWAY = "lambda-gateway"
GATEWAY_PATH = f"/v1/config/terminating-gateway/{GATEWAY}"
EXPORTED_PATH = "/v1/config/exported-services/default"
RECORD = f"consul-lambda-sync/{sup.NODE}/0"
NAME = "meshed"
THEIRS: dict[str, Any] = {
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
    # Their Meta pair is kept; the registrator's record names its item.
    assert entry.get("Meta") == {**THEIRS["Meta"], RECORD: NAME}, entry
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


# -- items not ours (issue 24, item 2) -------------------------------------------------


@pytest.fixture
def bare(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]]:
    for proxy in (consul_proxy, aws_proxy):
        proxy.clear_faults()
    consul.clean()
    yield consul, consul_proxy, aws_proxy, moto
    consul.clean()


def functions(moto: sup.MotoSeeded, names: list[str]) -> Any:
    """moto with the enabled functions ``names`` (and nothing else); its Lambda client."""
    role = reset_moto(moto)
    lam = client("lambda", moto)
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": sup.function_zip()},
            Tags={sup.ENABLED: "true"},
        )
    return lam


def as_written(entry: Any) -> Any:
    """An entry as read, without the fields Consul keeps."""
    assert entry is not None
    return {k: v for k, v in entry.items() if k not in ("CreateIndex", "ModifyIndex", "Hash")}


def sync(host: str, env: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One full sync through ``host``'s handler, which must succeed: its result and log records."""
    logs: list[dict[str, Any]] = []
    run = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN, logs)
    assert not run["raised"], run["result"]
    assert run["result"]["verdict"] == "ok", run["result"]
    return run["result"], logs


def warnings(logs: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    """The plan warning records of ``code``: one a kind, with its ``count`` (the engine
    logs one record per code, the first five names in ``first``)."""
    return [r for r in logs if r.get("msg") == "plan warning" and r.get("code") == code]


def warned(logs: list[dict[str, Any]], code: str) -> list[str]:
    """What the ``code`` warnings name (each one's ``value``), from the aggregated records."""
    names: list[str] = []
    for r in warnings(logs, code):
        names += str(r["first"]).split(", ") if r.get("count", 1) > 1 else [str(r["value"])]
    return names


@pytest.mark.parametrize("host", HOSTS)
def test_a_persons_items_for_managed_names_are_unchanged_across_our_add_and_withdraw(
    host: str, bare: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]
) -> None:
    consul, consul_proxy, aws_proxy, moto = bare
    lam = functions(moto, ["ledger", "ledger-api", "payments"])
    their_gateway: dict[str, Any] = {
        "Kind": "terminating-gateway",
        "Name": GATEWAY,
        "Meta": {"owner": "network-team", "ticket": "NET-1234: ledger-api TLS"},
        "Services": [{"Name": "ledger-api", "CAFile": "/etc/ca.pem", "SNI": "ledger.internal"}],
    }
    their_exports: dict[str, Any] = {
        "Kind": "exported-services",
        "Name": "default",
        "Meta": {"owner": "mesh-team"},
        "Services": [{"Name": "payments", "Consumers": [{"Peer": "east"}]}],
    }
    consul.put("/v1/config", their_gateway)
    consul.put("/v1/config", their_exports)
    env = host_env(
        consul_proxy.url,
        aws_proxy.url,
        TERMINATING_GATEWAY_NAME=GATEWAY,
        EXPORTED_SERVICES_PEERS="west",
    )

    # Added: our items next to theirs, recorded; theirs as written, with a warning each.
    _, logs = sync(host, env)
    gateway = as_written(consul.get(GATEWAY_PATH))
    assert gateway["Services"] == [
        their_gateway["Services"][0],
        {"Name": "ledger"},
        {"Name": "payments"},
    ], gateway
    assert gateway["Meta"] == {**their_gateway["Meta"], RECORD: "ledger,payments"}, gateway
    exports = as_written(consul.get(EXPORTED_PATH))
    assert exports["Services"] == [
        their_exports["Services"][0],  # west is not merged into their item
        {"Name": "ledger", "Consumers": [{"Peer": "west"}]},
        {"Name": "ledger-api", "Consumers": [{"Peer": "west"}]},
    ], exports
    assert exports["Meta"] == {**their_exports["Meta"], RECORD: "ledger,ledger-api"}, exports
    named = sorted(warned(logs, "mesh_item_not_ours"))
    assert named == ["default", GATEWAY], logs

    # Withdrawn: every function goes; only our items leave, theirs are exactly as written.
    for name in ("ledger", "ledger-api", "payments"):
        lam.delete_function(FunctionName=name)
    result, _ = sync(host, env)
    assert consul.managed_services() == {}, result
    assert as_written(consul.get(GATEWAY_PATH)) == their_gateway
    assert as_written(consul.get(EXPORTED_PATH)) == their_exports


@pytest.mark.parametrize("host", HOSTS)
def test_an_earlier_versions_item_is_adopted_when_exact_and_left_when_not(
    host: str, bare: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]
) -> None:
    consul, consul_proxy, aws_proxy, moto = bare
    lam = functions(moto, ["exact", "edited"])
    # As an earlier version left them (no record), one item of each edited since.
    gateway_items = [{"Name": "exact"}, {"Name": "edited", "SNI": "edited.internal"}]
    export_items = [
        {"Name": "exact", "Consumers": [{"Peer": "west"}]},
        {"Name": "edited", "Consumers": [{"Peer": "west"}, {"Peer": "east"}]},
    ]
    consul.put(
        "/v1/config", {"Kind": "terminating-gateway", "Name": GATEWAY, "Services": gateway_items}
    )
    consul.put(
        "/v1/config", {"Kind": "exported-services", "Name": "default", "Services": export_items}
    )
    env = host_env(
        consul_proxy.url,
        aws_proxy.url,
        TERMINATING_GATEWAY_NAME=GATEWAY,
        EXPORTED_SERVICES_PEERS="west",
    )

    # Adopted: only the record is written; the edited items are named in warnings.
    _, logs = sync(host, env)
    gateway = as_written(consul.get(GATEWAY_PATH))
    assert gateway["Services"] == gateway_items, gateway
    assert gateway["Meta"] == {RECORD: "exact"}, gateway
    exports = as_written(consul.get(EXPORTED_PATH))
    assert exports["Services"] == export_items, exports
    assert exports["Meta"] == {RECORD: "exact"}, exports
    not_ours = warnings(logs, "mesh_item_not_ours")
    assert len(not_ours) == 1, logs
    assert not_ours[0]["count"] == 2, not_ours
    assert "edited" in not_ours[0]["message"], not_ours

    # Withdrawn: the adopted items go, the edited ones stay as they are.
    for name in ("exact", "edited"):
        lam.delete_function(FunctionName=name)
    sync(host, env)
    assert as_written(consul.get(GATEWAY_PATH)) == {
        "Kind": "terminating-gateway",
        "Name": GATEWAY,
        "Services": [gateway_items[1]],
    }
    assert as_written(consul.get(EXPORTED_PATH)) == {
        "Kind": "exported-services",
        "Name": "default",
        "Services": [export_items[1]],
    }


@pytest.mark.parametrize("host", HOSTS)
def test_a_full_meta_record_lists_what_fits_and_consul_takes_every_write(
    host: str, bare: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]
) -> None:
    consul, consul_proxy, aws_proxy, moto = bare
    # 60-character names: 8 to a 512-byte value (8 x 61 - 1 = 487 bytes).
    names = [f"{i:02}-{'x' * 57}" for i in range(10)]
    lam = functions(moto, names)
    theirs = {f"team-{i:02}": f"value {i}" for i in range(63)}  # one pair left
    consul.put(
        "/v1/config",
        {"Kind": "terminating-gateway", "Name": GATEWAY, "Meta": theirs, "Services": []},
    )
    env = host_env(consul_proxy.url, aws_proxy.url, TERMINATING_GATEWAY_NAME=GATEWAY)

    def listed() -> list[str]:
        return [s["Name"] for s in consul.get(GATEWAY_PATH)["Services"]]

    def record() -> list[str]:
        meta = consul.get(GATEWAY_PATH).get("Meta") or {}
        assert len(meta) <= 64
        assert all(len(v) <= 512 for v in meta.values())
        ours = f"consul-lambda-sync/{sup.NODE}/"
        mine = [v for k, v in sorted(meta.items()) if k.startswith(ours)]
        return [item for v in mine for item in v.split(",")]

    # One pair left: 8 are listed and recorded, 2 are not (a warning); no write refused.
    result, logs = sync(host, env)
    assert result["operations"]["failed"] == 0, result
    assert listed() == names[:8]
    assert record() == names[:8]
    full = warnings(logs, "mesh_record_full")
    assert len(full) == 1, logs
    assert "no room for 2 more" in full[0]["message"], full
    assert {k: v for k, v in consul.get(GATEWAY_PATH)["Meta"].items() if k in theirs} == theirs

    # A person removes one of their pairs: the other 2 fit now.
    meta = {k: v for k, v in theirs.items() if k != "team-00"}
    entry = as_written(consul.get(GATEWAY_PATH))
    entry["Meta"] = {**meta, **{k: v for k, v in entry["Meta"].items() if k not in theirs}}
    consul.put("/v1/config", entry)
    _, logs = sync(host, env)
    assert listed() == names
    assert sorted(record()) == names
    assert warnings(logs, "mesh_record_full") == []

    # Every function goes: every item leaves with its record; their pairs stay as they are.
    for name in names:
        lam.delete_function(FunctionName=name)
    sync(host, env)
    assert as_written(consul.get(GATEWAY_PATH)) == {
        "Kind": "terminating-gateway",
        "Name": GATEWAY,
        "Meta": meta,
        "Services": [],
    }
