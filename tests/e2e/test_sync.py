"""Full syncs and events against a real Consul agent and moto."""

from __future__ import annotations

import collections
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from consul_lambda_sync.host.handler import SyncFailed
from consul_lambda_sync.host.http1 import Connection
from consul_lambda_sync.host.transport import Aws

from harness import ENABLED, MANAGED_TAG, PREFIX, Harness


def lambda_args(entry: dict[str, Any]) -> dict[str, Any]:
    (ext,) = entry["EnvoyExtensions"]
    assert ext["Name"] == "builtin/aws/lambda"
    return dict(ext["Arguments"])


def test_full_sync_registers_tagged_functions(h: Harness) -> None:
    h.enabled("orders", aliases="prod+staging")
    h.enabled("payments", invocation_mode="ASYNCHRONOUS", payload_passthrough="true")
    h.create_function("plain", {"team": "x"})
    h.create_function("off", {ENABLED: "false"})
    h.create_function("untagged")

    out = h.sync()

    assert out["ok"]
    assert out["summary"]["create"] == 4
    assert out["operations"]["failed"] == 0
    services = h.consul.services()
    assert sorted(services) == ["orders", "orders-prod", "orders-staging", "payments"]
    for name, s in services.items():
        assert s["ID"] == name
        assert s["Tags"] == [MANAGED_TAG]
    node = h.consul.node()
    assert node is not None
    assert node["Meta"]["external-node"] == "true"
    assert node["Meta"]["external-probe"] == "true"

    entries = h.consul.entries()
    assert sorted(entries) == sorted(services)
    assert entries["payments"]["Protocol"] == "http"
    assert lambda_args(entries["payments"]) == {
        "arn": h.arn("payments"),
        "invocationMode": "asynchronous",  # FIX: lower case, which Consul honours
        "payloadPassthrough": True,
    }
    assert lambda_args(entries["orders"]) == {
        "arn": h.arn("orders"),
        "invocationMode": "synchronous",
        "payloadPassthrough": False,
    }
    assert lambda_args(entries["orders-prod"])["arn"] == h.arn("orders") + ":prod"
    assert lambda_args(entries["orders-staging"])["arn"] == h.arn("orders") + ":staging"
    assert entries["orders"]["EnvoyExtensions"][0]["Required"] is False


def test_the_handler_prints_one_emf_metrics_line(h: Harness) -> None:
    h.enabled("metered", aliases="live")
    h.enabled("broken", invocation_mode="async")
    lines: list[str] = []
    out = h.sync(stdout=lines.append)
    assert len(lines) == 1
    assert lines[0].endswith("\n")
    emf = json.loads(lines[0])
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ConsulLambdaSync"
    assert emf["_aws"]["Timestamp"] > 1.6e12  # wall clock, ms
    for metric in directive["Metrics"]:
        assert isinstance(emf[metric["Name"]], int), metric
    for dims in directive["Dimensions"]:
        for d in dims:
            assert isinstance(emf[d], str), d
    assert emf["ServicesCreated"] == 2
    assert emf["FunctionsInvalid"] == 1
    assert "metered" not in lines[0]
    assert "broken" not in lines[0]  # no function names
    assert "plan" not in out  # a Lambda response stays small
    assert "outcomes" not in out


def test_steady_state_makes_no_writes(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        h.enabled(f"fn{i}", aliases="live")
    first = h.sync()
    assert first["summary"]["create"] == 10

    # Count every HTTP request the host sends to Consul, independently of its own counters.
    seen: collections.Counter[str] = collections.Counter()
    real = Connection.request
    consul_port = int(h.consul.addr.rsplit(":", 1)[1])

    def counting(self: Connection, method: str, url: str, *a: Any, **kw: Any) -> Any:
        if self.port == consul_port:
            seen[method.upper()] += 1
        return real(self, method, url, *a, **kw)

    monkeypatch.setattr(Connection, "request", counting)
    again = h.sync()

    assert again["summary"]["operations"] == 0
    assert again["summary"]["unchanged"] == 10
    assert seen["PUT"] == 0
    assert seen["DELETE"] == 0
    # agent/self, catalog/datacenters, node-services, service-defaults, and the
    # names on other nodes (catalog/services).
    assert seen["GET"] == 5
    assert again["requests"]["consul"] == {"reads": 5, "writes": 0, "transactions": 0}
    # One GetResources page for up to 100 functions, nothing else (the account comes
    # from the Lambda context, so no STS call).
    calls = again["requests"]["aws"]["calls"]
    assert calls == {"GetResources": 1}
    print(
        f"\nsteady full sync, 5 functions/10 services: consul {again['requests']['consul']}, "
        f"aws {calls}"
    )


def test_tag_untag_and_delete_events(h: Harness) -> None:
    h.create_function("svc", {"team": "x"})
    h.create_function("other")
    assert h.sync()["summary"]["create"] == 0

    # Tagging: the event names one function; only that function is read and synced.
    h.tag("svc", {ENABLED: "true"})
    out = h.handle(h.tag_event("svc", {ENABLED: "true"}))
    assert out["trigger"]["kind"] == "function"
    assert out["summary"]["create"] == 1
    assert out["requests"]["aws"]["calls"].get("ListTags") == 1
    assert "GetResources" not in out["requests"]["aws"]["calls"]
    assert "svc" in h.consul.services()
    assert "svc" in h.consul.entries()

    # Untagging the enabled key deregisters it and deletes its config entry.
    h.untag("svc", [ENABLED])
    out = h.handle(h.untag_event("svc", [ENABLED]))
    assert out["summary"]["delete"] == 1
    assert "svc" not in h.consul.services()
    assert "svc" not in h.consul.entries()

    # CreateFunction with tags registers; DeleteFunction (FIX) deregisters.
    h.enabled("born")
    assert h.handle(h.create_event("born"))["summary"]["create"] == 1
    assert "born" in h.consul.services()
    h.delete_function("born")
    out = h.handle(h.delete_event("born"))
    assert out["summary"]["delete"] == 1
    assert "born" not in h.consul.services()
    assert "born" not in h.consul.entries()


def test_ignored_events_touch_nothing(h: Harness) -> None:
    failed = h.tag_event("x", {ENABLED: "true"})
    failed["detail"]["errorCode"] = "AccessDenied"
    out = h.handle(failed)
    assert out["trigger"]["kind"] == "ignore"
    version_delete = h.cloudtrail("DeleteFunction20150331", {"functionName": "x", "qualifier": "3"})
    assert h.handle(version_delete)["trigger"]["kind"] == "ignore"


def test_drift_is_repaired_by_full_sync(h: Harness) -> None:
    h.enabled("drifty", invocation_mode="asynchronous")
    h.enabled("steady")
    h.sync()
    # Someone edits the entry by hand (upstream's upper-case value means synchronous)…
    entry = h.consul.entries()["drifty"]
    entry["EnvoyExtensions"][0]["Arguments"]["invocationMode"] = "ASYNCHRONOUS"
    entry["EnvoyExtensions"][0]["Arguments"]["payloadPassthrough"] = True
    h.consul.put("/v1/config", entry)
    # …and deregisters the other service from the catalog.
    h.consul.put("/v1/catalog/deregister", {"Node": "lambdas", "ServiceID": "steady"})

    out = h.sync()
    assert out["summary"]["update"] == 2
    assert out["summary"]["create"] == 0
    assert out["requests"]["consul"]["writes"] == 2
    assert lambda_args(h.consul.entries()["drifty"]) == {
        "arn": h.arn("drifty"),
        "invocationMode": "asynchronous",
        "payloadPassthrough": False,
    }
    assert "steady" in h.consul.services()
    assert h.sync()["summary"]["operations"] == 0


def test_key_case_alone_is_not_drift(h: Harness) -> None:
    h.enabled("cased")
    h.sync()
    entry = h.consul.entries()["cased"]
    args = entry["EnvoyExtensions"][0]["Arguments"]
    entry["EnvoyExtensions"][0]["Arguments"] = {
        "ARN": args["arn"],
        "InvocationMode": "synchronous",
        "PayloadPassthrough": False,
    }
    h.consul.put("/v1/config", entry)
    assert h.sync()["summary"]["operations"] == 0


def test_alias_removed_deregisters_its_service(h: Harness) -> None:
    h.enabled("f", aliases="a+b")
    h.sync()
    assert sorted(h.consul.services()) == ["f", "f-a", "f-b"]
    h.tag("f", {PREFIX + "aliases": "b"})
    out = h.handle(h.tag_event("f", {PREFIX + "aliases": "b"}))
    assert out["summary"]["delete"] == 1
    assert sorted(h.consul.services()) == ["f", "f-b"]
    assert sorted(h.consul.entries()) == ["f", "f-b"]


def test_invalid_tag_freezes_only_that_function(h: Harness) -> None:
    h.enabled("good")
    h.enabled("bad")
    h.sync()
    before = h.consul.entries()["bad"]
    # A bad value on an already registered function, and a new function with a bad value.
    h.tag("bad", {PREFIX + "invocation-mode": "async"})
    h.create_function("typo", {ENABLED: "yes"})
    h.enabled("new")

    out = h.sync()  # does not raise: per-function errors do not fail the invocation

    assert out["ok"]
    codes = {(e["function"].rsplit(":", 1)[-1], e["code"]) for e in out["errors"]}
    assert ("bad", "invalid_invocation_mode") in codes
    assert ("typo", "invalid_boolean") in codes
    assert "new" in h.consul.services()
    # The bad function's state is left exactly as it was.
    assert "bad" in h.consul.services()
    assert h.consul.entries()["bad"] == before
    assert "typo" not in h.consul.services()


def test_listing_lag_is_confirmed_with_list_tags(h: Harness) -> None:
    h.enabled("young")
    h.enabled("gone")
    h.sync()
    h.delete_function("gone")

    def factory(region: str | None) -> Aws:
        aws = Aws(region)

        def hide_young(parsed: dict[str, Any], **_: Any) -> None:
            parsed["ResourceTagMappingList"] = [
                m
                for m in parsed.get("ResourceTagMappingList", [])
                if not m["ResourceARN"].endswith(":young")
            ]

        aws.client("resourcegroupstaggingapi").meta.events.register(
            "after-call.resource-groups-tagging-api.GetResources", hide_young
        )
        return aws

    out = h.sync(aws_factory=factory)
    # Both are missing from the listing; ListTags finds "young" and confirms "gone".
    assert out["requests"]["aws"]["calls"]["ListTags"] == 2
    assert out["summary"]["delete"] == 1
    assert sorted(h.consul.services()) == ["young"]


def test_untagged_function_is_deregistered_after_confirmation(h: Harness) -> None:
    h.enabled("shy")
    h.sync()
    h.untag("shy", [ENABLED])  # no tags left: GetResources no longer lists it
    out = h.sync()
    assert out["summary"]["delete"] == 1
    assert out["requests"]["aws"]["calls"]["ListTags"] == 1
    assert h.consul.services() == {}


def test_transient_aws_failure_deletes_nothing(h: Harness) -> None:
    h.enabled("alive")
    h.enabled("doomed")
    h.sync()
    h.delete_function("doomed")

    def failing(region: str | None) -> Aws:
        aws = Aws(region)

        def throttle(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "GetResources",
            )

        aws.client("resourcegroupstaggingapi").meta.events.register(
            "before-call.resource-groups-tagging-api.GetResources", throttle
        )
        return aws

    with pytest.raises(SyncFailed) as err:
        h.sync(aws_factory=failing)
    summary = err.value.summary
    assert summary["inventory"]["complete"] is False
    assert summary["summary"]["delete"] == 0
    assert summary["requests"]["consul"]["writes"] == 0
    assert sorted(h.consul.services()) == ["alive", "doomed"]

    # The next complete sync applies the deletion.
    out = h.sync()
    assert out["summary"]["delete"] == 1
    assert sorted(h.consul.services()) == ["alive"]


def test_unmanaged_service_and_foreign_entry_are_never_touched(h: Harness) -> None:
    h.consul.put(
        "/v1/catalog/register",
        {
            "Node": "lambdas",
            "Address": "lambdas",
            "Service": {"ID": "hand", "Service": "hand", "Tags": ["by-hand"]},
        },
    )
    h.consul.put("/v1/config", {"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"})
    h.enabled("hand")
    h.enabled("web")
    h.enabled("fine")
    out = h.sync()
    codes = {(e["function"].rsplit(":", 1)[-1], e["code"]) for e in out["errors"]}
    assert codes == {("hand", "unmanaged_service_conflict"), ("web", "foreign_config_entry")}
    assert h.consul.services()["hand"]["Tags"] == ["by-hand"]
    assert h.consul.entries()["web"].get("EnvoyExtensions") in (None, [])
    assert "fine" in h.consul.services()


def test_mass_deregistration_is_blocked(h: Harness) -> None:
    for i in range(12):
        h.enabled(f"m{i:02d}")
    h.sync()
    for i in range(7):
        h.delete_function(f"m{i:02d}")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert any(e["code"] == "mass_deregistration_blocked" for e in err.value.summary["errors"])
    assert len(h.consul.services()) == 12
    h.setenv(ALLOW_MASS_DEREGISTRATION="true")
    assert h.sync()["summary"]["delete"] == 7
    assert len(h.consul.services()) == 5


def test_datacenter_tag_for_another_datacenter_is_left_alone(h: Harness) -> None:
    h.setenv(DATACENTER="dc1")
    h.enabled("here")
    h.enabled("there", datacenter="dc2")
    out = h.sync()
    assert sorted(h.consul.services()) == ["here"]
    # DATACENTER set: agent/self is not needed. The datacenters, dc1's node services
    # and service-defaults, and the names other nodes use in the one datacenter listed.
    assert out["requests"]["consul"]["reads"] == 4


def test_dry_run_changes_nothing(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    h.enabled("dry")
    h.setenv(DRY_RUN="true")
    out = h.sync()
    assert out["dryRun"] is True
    assert out["summary"]["create"] == 1
    assert out["operations"]["ok"] == out["operations"]["failed"] == 0
    assert out["operations"]["skipped"] == 0
    assert out["requests"]["consul"]["writes"] == 0
    assert h.consul.services() == {}
    assert "dry run, nothing changed" in capsys.readouterr().out


def log_records(stdout: str) -> list[dict[str, Any]]:
    """The handler's log lines (without its one CloudWatch EMF metrics line)."""
    records = [json.loads(x) for x in stdout.splitlines()]
    return [r for r in records if "_aws" not in r]


def test_unsupported_event_raises_and_logs_errors_only(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # The engine classifies the event: it stops before any request ("sync stopped",
    # "sync finished"), and the handler raises SyncFailed carrying the core's failure.
    with pytest.raises(SyncFailed) as err:
        h.handle({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})
    assert err.value.summary["failure"]["code"] == "unsupported_event"
    assert err.value.summary["requests"]["consul"]["reads"] == 0
    lines = log_records(capsys.readouterr().out)
    assert lines
    assert all(line["level"] == "error" for line in lines)
    assert lines[-1]["msg"] == "sync finished"


def test_unreachable_consul_raises_and_logs(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    h.enabled("x")
    h.setenv(CONSUL_HTTP_ADDR="http://127.0.0.1:9", CONSUL_TIMEOUT_MS="500")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert err.value.summary["verdict"] == "unreachable"
    assert err.value.summary["requests"]["consul"]["writes"] == 0
    lines = log_records(capsys.readouterr().out)
    assert lines[-1]["msg"] == "sync finished"
    assert lines[-1]["verdict"] == "unreachable"
    assert "Connection refused" in lines[-1]["message"]
