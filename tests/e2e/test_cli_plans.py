"""Reviewed plans (``plan --out`` then ``sync --plan``) and ``prune``, on the real servers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness import ENABLED, PREFIX, Harness

if TYPE_CHECKING:
    from pathlib import Path

CANARY = "canary-token-5f0d9c1e-never-in-a-plan"
EXT = "/cls/plans"


def _by_hand(h: Harness, service: str) -> None:
    """A service someone registered on the registrator's node by hand."""
    h.consul.put(
        "/v1/catalog/register",
        {
            "Node": "lambdas",
            "Address": "lambdas",
            "Service": {"ID": service, "Service": service, "Tags": ["by-hand"]},
        },
    )


def _state(h: Harness) -> dict[str, Any]:
    """Everything the registrator could touch, with the Consul objects' ModifyIndex."""
    return {
        "services": {n: s["ModifyIndex"] for n, s in h.consul.services().items()},
        "entries": {n: e["ModifyIndex"] for n, e in h.consul.entries().items()},
        "parameters": h.parameters("/"),
    }


def test_reviewed_plan_applies_exactly_what_was_reviewed(h: Harness, tmp_path: Path) -> None:
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=EXT, CONSUL_HTTP_TOKEN=CANARY)
    h.enabled("rev-a")
    h.enabled("rev-b", aliases="live")
    saved = tmp_path / "plan.json"

    plan = h.cli("plan", "--out", str(saved), log_level="debug")
    assert plan.returncode == 0, plan.stderr
    assert f"sync --plan {saved}" in plan.stdout
    text = saved.read_text()
    for secret in (CANARY, "PRIVATE KEY"):
        assert secret not in text
        assert secret not in plan.stdout + plan.stderr
    doc = json.loads(text)
    assert sorted(doc) == ["basis", "plan"]
    assert doc["plan"]["summary"]["create"] == 3
    assert {o["service"]["name"] for o in doc["basis"]["objects"]} == {
        "rev-a",
        "rev-b",
        "rev-b-live",
    }
    assert _state(h)["services"] == {}  # plan --out changes nothing

    # Unrelated changes after the review: a function tagged, a service registered by hand.
    h.enabled("rev-unrelated")
    _by_hand(h, "hand")

    applied = h.cli("sync", "--plan", str(saved))
    assert applied.returncode == 0, applied.stderr
    assert "Applied: 9 ok, 0 failed, 0 skipped." in applied.stdout  # 3 x (entry, service, data)
    assert sorted(h.consul.managed_services()) == ["rev-a", "rev-b", "rev-b-live"]
    assert "hand" in h.consul.services()
    assert sorted(h.consul.entries()) == ["rev-a", "rev-b", "rev-b-live"]
    assert sorted(h.parameters(EXT)) == [
        f"{EXT}/default/default/{n}" for n in ("rev-a", "rev-b", "rev-b-live")
    ]

    # The next sync registers the unrelated function (and leaves the hand-made service).
    again = h.cli("plan", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["plan"]["summary"]["create"] == 1


def test_stale_reviewed_plan_is_refused_and_changes_nothing(h: Harness, tmp_path: Path) -> None:
    h.enabled("edited")
    h.enabled("quiet")
    assert h.cli("sync").returncode == 0
    h.tag("edited", {PREFIX + "invocation-mode": "asynchronous"})
    h.tag("quiet", {ENABLED: "false"})
    saved = tmp_path / "plan.json"
    plan = h.cli("plan", "--out", str(saved))
    assert plan.returncode == 0, plan.stderr
    summary = json.loads(saved.read_text())["plan"]["summary"]
    assert (summary["update"], summary["delete"]) == (1, 1)

    # Someone edits the entry the plan updates.
    entry = h.consul.entries()["edited"]
    entry["EnvoyExtensions"][0]["Arguments"]["payloadPassthrough"] = True
    h.consul.put("/v1/config", entry)
    before = _state(h)

    refused = h.cli("sync", "--plan", str(saved))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert "stale" in refused.stderr
    assert "service-defaults entry edited" in refused.stderr
    assert "Applied" not in refused.stdout
    assert _state(h) == before  # nothing written, the other service not deleted either

    as_json = h.cli("sync", "--plan", str(saved), "--json")
    assert as_json.returncode == 1
    failure = json.loads(as_json.stdout)
    assert failure["ok"] is False
    assert failure["code"] == "plan_stale"
    assert "service-defaults entry edited" in failure["message"]
    assert _state(h) == before

    # Not a plan file (no basis): a usage error of the command line.
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"plan": {}}')
    usage = h.cli("sync", "--plan", str(bogus))
    assert usage.returncode == 3, usage.stderr
    assert "not a plan written by" in usage.stderr
    # Shaped like one but not readable as a plan: the engine refuses it before any write
    # (plan_rejected, a stop: exit 1; docs/engine.md "Reviewed plans and pruning").
    bogus.write_text('{"plan": {"nope": 1}, "basis": {}}')
    bad = h.cli("sync", "--plan", str(bogus))
    assert bad.returncode == 1, bad.stderr
    assert "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith(
        "consul-lambda-sync: [plan_rejected] the plan file cannot be read: "
        "missing field `operations`"
    ), bad.stderr
    assert "Applied" not in bad.stdout
    bad_json = json.loads(h.cli("sync", "--plan", str(bogus), "--json").stdout)
    assert (bad_json["code"], bad_json["exitCode"]) == ("plan_rejected", 1)
    assert _state(h) == before


def test_prune_removes_what_the_registrator_manages_and_nothing_else(h: Harness) -> None:
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=EXT)
    h.enabled("pr-a", aliases="live")
    h.enabled("pr-b")
    assert h.cli("sync").returncode == 0
    _by_hand(h, "hand")
    h.consul.put("/v1/config", {"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"})
    h.put_secret("/elsewhere/keep", "value")
    h.put_secret(f"{EXT}/default/default/not-ours-but-under-the-prefix", "{}")
    before = _state(h)
    assert len(before["services"]) == 4
    assert len(before["entries"]) == 4

    dry = h.cli("prune")
    assert dry.returncode == 0, dry.stderr
    for name in ("pr-a", "pr-a-live", "pr-b"):
        assert f"- {name}" in dry.stdout
    assert "hand" not in dry.stdout
    assert "prune --yes" in dry.stdout
    assert _state(h) == before
    as_json = h.cli("prune", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["plan"]["summary"]["delete"] == 3
    assert _state(h) == before

    pruned = h.cli("prune", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    after = _state(h)
    assert sorted(after["services"]) == ["hand"]
    assert after["services"]["hand"] == before["services"]["hand"]
    assert after["entries"] == {"web": before["entries"]["web"]}
    assert sorted(after["parameters"]) == [
        f"{EXT}/default/default/not-ours-but-under-the-prefix",
        "/elsewhere/keep",
    ]
    # The functions are untouched: the next sync registers them again.
    assert h.lam.get_function(FunctionName="pr-a")["Tags"][ENABLED] == "true"
    assert h.cli("prune", "--yes").returncode == 0  # nothing left to remove
    assert _state(h) == after


def test_plan_shows_the_gateway_change_and_a_reviewed_plan_refuses_a_later_edit(
    h: Harness, tmp_path: Path
) -> None:
    gateway = "/v1/config/terminating-gateway/lambda-gateway"
    theirs = {"Name": "legacy-db", "CAFile": "/etc/ssl/db-ca.pem"}
    h.consul.put(
        "/v1/config",
        {"Kind": "terminating-gateway", "Name": "lambda-gateway", "Services": [theirs]},
    )
    h.setenv(TERMINATING_GATEWAY_NAME="lambda-gateway")
    h.enabled("mesh-a")
    saved = tmp_path / "plan.json"

    plan = h.cli("plan", "--out", str(saved))
    assert plan.returncode == 0, plan.stderr
    assert "~ terminating-gateway lambda-gateway  list mesh-a" in plan.stdout, plan.stdout
    doc = json.loads(saved.read_text())
    assert doc["plan"]["mesh"] == [
        {
            "kind": "terminatingGateway",
            "name": "lambda-gateway",
            "change": "update",
            "add": [{"name": "mesh-a"}],
            "remove": [],
            "reason": "list mesh-a",
        }
    ]
    assert h.consul.get(gateway)["Services"] == [theirs]  # plan changes nothing

    # A person edits the entry after the review. A reviewed plan is applied only as the
    # engine decides it now, at the reviewed indexes (docs/engine.md "Reviewed plans and
    # pruning"): the gateway write was decided at the entry's old ModifyIndex, so the
    # whole apply is refused before any write and the person's edit stands.
    later = {"Name": "billing-db"}
    h.consul.put(
        "/v1/config",
        {"Kind": "terminating-gateway", "Name": "lambda-gateway", "Services": [theirs, later]},
    )
    before = _state(h)
    edited = h.consul.get(gateway)
    refused = h.cli("sync", "--plan", str(saved))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert "lambda-gateway" in refused.stderr
    assert "Applied" not in refused.stdout
    # The entry moved since review: plan_stale (README "Reviewed plans"), naming it and the
    # indexes; nothing is written.
    failure = json.loads(h.cli("sync", "--plan", str(saved), "--json").stdout)
    assert failure["exitCode"] == 1
    assert failure["code"] == "plan_stale", failure
    assert "changed since review (index" in failure["message"], failure
    assert "lambda-gateway" in failure["message"]
    assert _state(h) == before
    assert h.consul.get(gateway) == edited

    # Planned again and reviewed: the gateway change merges into the person's version.
    plan = h.cli("plan", "--out", str(saved))
    assert plan.returncode == 0, plan.stderr
    assert "~ terminating-gateway lambda-gateway  list mesh-a" in plan.stdout, plan.stdout
    applied = h.cli("sync", "--plan", str(saved))
    assert applied.returncode == 0, applied.stderr
    assert h.consul.get(gateway)["Services"] == [theirs, later, {"Name": "mesh-a"}]
    assert sorted(h.consul.managed_services()) == ["mesh-a"]
