"""ACLs on (default deny): the registrator runs with the least-privilege token of
docs/acl-policy.hcl, read from Parameter Store (never the management token)."""

from __future__ import annotations

import json

import pytest
from cls_support import acl_policy as documented_acl_policy
from consul_lambda_sync.host.handler import SyncFailed

from conftest import TOKEN_PARAM
from harness import ENABLED, MANAGED_TAG, Harness


def test_least_privilege_token_syncs_everything(
    h_acl: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = h_acl
    assert "CONSUL_HTTP_TOKEN" not in h.env()
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX="/cls/acl")
    h.enabled("orders", aliases="prod")
    h.enabled("payments", invocation_mode="asynchronous")

    out = h.sync()

    assert out["ok"], out
    assert out["summary"]["create"] == 3
    assert sorted(h.consul.services()) == ["orders", "orders-prod", "payments"]
    assert all(s["Tags"] == [MANAGED_TAG] for s in h.consul.services().values())
    assert sorted(h.consul.entries()) == ["orders", "orders-prod", "payments"]
    # Leaf certificates need service:write: extension data was written too.
    assert sorted(h.parameters("/cls/acl")) == [
        "/cls/acl/default/default/orders",
        "/cls/acl/default/default/orders-prod",
        "/cls/acl/default/default/payments",
    ]
    # Steady state with the same token.
    again = h.sync()
    assert again["summary"]["operations"] == 0

    # Deregistration (catalog deregister + config entry delete + parameter delete).
    h.untag("payments", [ENABLED])
    out = h.handle(h.untag_event("payments", [ENABLED]))
    assert out["summary"]["delete"] == 1
    assert out["operations"]["failed"] == 0
    assert "payments" not in h.consul.services()
    assert "payments" not in h.consul.entries()
    assert "/cls/acl/default/default/payments" not in h.parameters("/cls/acl")

    logs = capsys.readouterr().out
    assert h.token
    assert h.token not in logs
    assert h.consul.management_token
    assert h.consul.management_token not in logs
    assert "PRIVATE KEY" not in logs


def test_handler_raises_when_an_operation_is_denied(
    h_acl: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = h_acl
    # Every name may be read (the names other nodes use are checked before one is
    # taken, and a filtered list would stop the sync: acl_filtered), but only the
    # "allowed-" ones written.
    narrow = h.consul.create_token(
        'node "lambdas" { policy = "write" }\n'
        'node_prefix "" { policy = "read" }\n'
        'service_prefix "" { policy = "read" }\n'
        'service_prefix "allowed-" { policy = "write" }\n'
        'agent_prefix "" { policy = "read" }\n',
        name="narrow",
    )
    h.put_secret(TOKEN_PARAM, narrow)
    h.enabled("allowed-one")
    h.enabled("denied")

    with pytest.raises(SyncFailed) as err:
        h.sync()

    summary = err.value.summary
    assert summary["operations"]["failed"] == 1
    assert summary["operations"]["ok"] == 2
    (failure,) = [f for f in summary["failures"] if f["status"] == "failed"]
    assert failure["service"]["name"] == "denied"
    assert "403" in failure["error"]
    assert summary["operations"]["skipped"] == 1
    # The register after the failed config entry write was not attempted.
    assert sorted(h.consul.services()) == ["allowed-one"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    ops = [ln for ln in lines if ln.get("msg") == "operation"]
    assert {(o["service"], o["status"]) for o in ops} == {
        ("allowed-one", "ok"),
        ("denied", "failed"),
        ("denied", "skipped"),
    }
    assert all(narrow not in json.dumps(ln) for ln in lines)


def test_mesh_wiring_needs_the_documented_mesh_rule(h_acl: Harness) -> None:
    """What each mesh request needs (docs/mesh.md "ACL"), on a default-deny agent."""
    h = h_acl
    h.enabled("meshed")
    h.consul.put(
        "/v1/config", {"Kind": "terminating-gateway", "Name": "lambda-gateway", "Services": []}
    )
    gateway = "/v1/config/terminating-gateway/lambda-gateway"

    # The documented policy without its mesh rule: the gateway's entry is read
    # (service:read on its name) but its write is refused (mesh:write), and the
    # service is still registered.
    h.setenv(TERMINATING_GATEWAY_NAME="lambda-gateway")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    summary = err.value.summary
    (failure,) = summary["failures"]
    assert failure["kind"] == "updateTerminatingGateway", failure
    assert "403" in failure["error"], failure
    assert 'mesh = "write"' in failure["error"], failure
    assert "meshed" in h.consul.services()
    assert h.consul.get(gateway)["Services"] == []

    # exported-services cannot even be read without mesh:read: the sync stops before
    # any write, naming the rule.
    h.setenv(EXPORTED_SERVICES_PEERS="west")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    summary = err.value.summary
    assert summary["verdict"] == "failed"
    assert summary["failure"]["code"] == "acl_denied", summary["failure"]
    assert summary["failure"]["key"] == "mesh:read"
    assert summary["requests"]["consul"]["writes"] == 0

    # With the rule uncommented, both entries are written.
    token = h.consul.create_token(documented_acl_policy(mesh=True), name="mesh")
    h.put_secret(TOKEN_PARAM, token)
    out = h.sync()
    assert out["ok"], out
    assert h.consul.get(gateway)["Services"] == [{"Name": "meshed"}]
    exported = h.consul.get("/v1/config/exported-services/default")
    assert exported["Services"] == [{"Name": "meshed", "Consumers": [{"Peer": "west"}]}]
