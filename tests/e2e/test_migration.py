"""Taking over from upstream's registrator (docs/migration.md): Consul holds exactly
what the real upstream registrator wrote for a few representative functions
(tests/e2e/fixtures/upstream-state.json, recorded by record_upstream.py beside it);
our first sync changes only what upstream got wrong, the second writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import MANAGED_TAG, NODE, PREFIX, Harness

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "upstream-state.json"
STATE: dict[str, Any] = json.loads(FIXTURE.read_text())

#: What upstream got wrong, for these functions: it wrote the tag's upper-case
#: ASYNCHRONOUS, which Consul's extension reads as synchronous (contract §4.3).
REPAIRED = {"async-worker", "async-passthrough-aliased", "async-passthrough-aliased-live"}


def load_upstream_state(h: Harness) -> None:
    """Writes the recorded catalog services and service-defaults entries into Consul."""
    node = STATE["node"]
    for svc in STATE["services"]:
        service = {k: svc[k] for k in ("ID", "Service", "Tags", "EnableTagOverride", "Weights")}
        h.consul.put(
            "/v1/catalog/register",
            {
                "Node": node["Node"],
                "Address": node["Address"],
                "NodeMeta": node["Meta"],
                "Service": service,
                # As upstream's client sent it: an empty address, accepted this way only.
                "SkipNodeUpdate": True,
            },
        )
    for entry in STATE["serviceDefaults"]:
        h.consul.put("/v1/config", without_read_defaults(entry))


def without_read_defaults(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as written: without the empty ``ConsulVersion``/``EnvoyVersion`` that
    Consul 1.16+ adds to each extension when it is read back (and 1.15 rejects)."""
    out = dict(entry)
    out["EnvoyExtensions"] = [
        {k: v for k, v in ext.items() if not (k in ("ConsulVersion", "EnvoyVersion") and v == "")}
        for ext in entry.get("EnvoyExtensions") or []
    ]
    return out


def create_functions(h: Harness) -> None:
    for name, tags in STATE["functions"].items():
        h.create_function(name, {PREFIX + k: v for k, v in tags.items()})


def entry_modes(h: Harness) -> dict[str, str]:
    return {
        name: e["EnvoyExtensions"][0]["Arguments"]["invocationMode"]
        for name, e in h.consul.entries().items()
    }


def test_the_fixture_is_upstreams_state() -> None:
    # What upstream writes (docs/upstream-notes.md): its tag on every service, one
    # entry per service, the tag's mode as is.
    assert STATE["recorded"]["env"]["NODE_NAME"] == NODE
    assert all(s["Tags"] == [MANAGED_TAG] for s in STATE["services"])
    names = sorted(s["Service"] for s in STATE["services"])
    assert names == sorted(e["Name"] for e in STATE["serviceDefaults"])
    assert len(names) == 9
    modes = {
        e["Name"]: e["EnvoyExtensions"][0]["Arguments"]["invocationMode"]
        for e in STATE["serviceDefaults"]
    }
    assert {n for n, m in modes.items() if m == "ASYNCHRONOUS"} == REPAIRED


def test_first_sync_repairs_only_what_upstream_got_wrong(h: Harness) -> None:
    load_upstream_state(h)
    create_functions(h)
    before_services = h.consul.services()
    before = h.consul.entries()
    assert entry_modes(h)["async-worker"] == "ASYNCHRONOUS"

    first = h.sync()

    assert first["ok"], first
    summary = first["summary"]
    assert (summary["create"], summary["update"], summary["delete"]) == (0, 3, 0)
    assert summary["unchanged"] == 6
    # Exactly one check-and-set config write per repaired entry; no catalog write.
    assert first["requests"]["consul"]["writes"] == 3
    assert first["requests"]["consul"]["transactions"] == 0
    assert first["operations"] == {"ok": 3, "failed": 0, "skipped": 0, "conflicts": 0, "planned": 0}
    after = h.consul.entries()
    modes = entry_modes(h)
    for name in REPAIRED:
        assert modes[name] == "asynchronous"
    for name in set(after) - REPAIRED:
        assert after[name] == before[name], name  # not touched: same ModifyIndex too
    assert h.consul.services() == before_services

    second = h.sync()

    assert second["ok"], second
    assert second["summary"]["operations"] == 0
    assert second["requests"]["consul"]["writes"] == 0
    assert h.consul.entries() == after
