"""Extension data (CONSUL_EXTENSION_DATA_PREFIX): leaf certificates in Parameter Store."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from cls_support import acl_policy

from conftest import TOKEN_PARAM
from harness import ENABLED, Harness

if TYPE_CHECKING:
    import pytest

PREFIX = "/cls/ext"
LEFT_OUT = "cluster peers not read; the extension data names none"


def param(name: str) -> str:
    return f"{PREFIX}/default/default/{name}"


def test_written_refreshed_and_deleted(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=PREFIX)
    h.enabled("mesh", aliases="live")
    h.enabled("other")

    out = h.sync()
    assert out["ok"], out
    stored = h.parameters(PREFIX)
    assert sorted(stored) == [param("mesh"), param("mesh-live"), param("other")]
    data = json.loads(stored[param("mesh")])
    # Upstream's four fields and our `datacenter` (contract §12.3); a fresh dev agent has
    # one root and no peerings, so `inactiveRootCertPEMs` and `peers` are left out.
    assert sorted(data) == ["certPEM", "datacenter", "privateKeyPEM", "rootCertPEM", "trustDomain"]
    assert data["datacenter"] == h.consul.get("/v1/agent/self")["Config"]["Datacenter"]
    leaf = h.consul.get("/v1/agent/connect/ca/leaf/mesh")
    roots = h.consul.get("/v1/agent/connect/ca/roots")
    assert data["certPEM"] == leaf["CertPEM"]
    assert data["privateKeyPEM"] == leaf["PrivateKeyPEM"]
    assert data["trustDomain"] == roots["TrustDomain"]
    active = next(r for r in roots["Roots"] if r["Active"])
    assert data["rootCertPEM"] == active["RootCert"]
    kind = h.ssm.get_parameter(Name=param("mesh"))["Parameter"]["Type"]
    assert kind == "SecureString"

    # Steady state: no writes. Consul: the datacenters, agent/self, node services,
    # service-defaults and the names other nodes use (5); with extension data the roots,
    # whether the token may read the peerings (ACLs off here: yes), the peerings and one
    # agent-cached leaf per service (3 + 3). AWS: one SSM page.
    again = h.sync()
    assert again["summary"]["operations"] == 0
    assert again["requests"]["consul"] == {"reads": 5 + 3 + 3, "writes": 0, "transactions": 0}
    assert again["requests"]["aws"]["calls"] == {"GetResources": 1, "GetParametersByPath": 1}
    print(f"\nsteady full sync with extension data, 3 services: {again['requests']}")

    # A stale value (an old certificate) is rewritten (FIX: not only at first registration).
    stale = dict(data, certPEM="-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n")
    h.put_secret(param("mesh"), json.dumps(stale))
    out = h.sync()
    assert out["summary"]["update"] == 1
    assert out["requests"]["aws"]["writes"] == 1
    assert json.loads(h.parameters(PREFIX)[param("mesh")])["certPEM"] == leaf["CertPEM"]

    # Deregistration deletes the parameters.
    h.untag("mesh", [ENABLED])
    out = h.handle(h.untag_event("mesh", [ENABLED]))
    assert out["summary"]["delete"] == 2
    assert sorted(h.parameters(PREFIX)) == [param("other")]

    logs = capsys.readouterr().out
    assert "PRIVATE KEY" not in logs
    assert leaf["PrivateKeyPEM"] not in logs


def test_a_token_without_peering_read_is_not_sent_the_slow_peerings_read(
    h_acl: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented policy has no `peering = "read"`. Consul refuses GET /v1/peerings
    to such a token only after its own retries of the denial (7 s on 1.15, 12 s on 1.22,
    past the request timeout), so the registrator asks /v1/internal/acl/authorize first
    and leaves the peers out at once; with the rule added it reads them."""
    h = h_acl
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=PREFIX)
    h.enabled("solo")
    assert h.sync()["ok"]
    capsys.readouterr()

    without = h.sync()
    logs = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    left_out = [r for r in logs if r.get("msg") == LEFT_OUT]
    assert len(left_out) == 1, logs
    assert left_out[0]["level"] == "info"
    assert left_out[0]["status"] == 403
    assert 'peering = "read"' in left_out[0]["hint"]

    token = h.consul.create_token(acl_policy() + '\npeering = "read"\n', name="with-peering")
    h.put_secret(TOKEN_PARAM, token)
    h.token = token
    # Consul 1.15's agent caches leaf certificates per token: the new token's first
    # sync gets a new leaf and writes the data again. The next one is steady.
    assert h.sync()["ok"]
    allowed = h.sync()
    assert allowed["ok"], allowed
    # The same steady sync, and the peerings read (one more) only where allowed.
    assert without["summary"]["operations"] == allowed["summary"]["operations"] == 0
    reads = without["requests"]["consul"]["reads"], allowed["requests"]["consul"]["reads"]
    assert reads[1] == reads[0] + 1, reads
    assert LEFT_OUT not in capsys.readouterr().out


def test_missing_parameter_is_recreated_and_delete_of_missing_is_fine(h: Harness) -> None:
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=PREFIX)
    h.enabled("solo")
    h.sync()
    h.ssm.delete_parameter(Name=param("solo"))
    out = h.sync()
    assert out["summary"]["update"] == 1
    assert param("solo") in h.parameters(PREFIX)
    # Deleted by hand before the function goes away: the deregistration still succeeds.
    h.ssm.delete_parameter(Name=param("solo"))
    h.delete_function("solo")
    out = h.handle(h.delete_event("solo"))
    assert out["ok"]
    assert out["summary"]["delete"] == 1
    assert h.consul.services() == {}


def test_rewritten_when_consul_rotates_the_ca(h: Harness) -> None:
    """A real leaf change: the CA is rotated, the agent re-issues the leaf, the next
    full sync rewrites the parameter with the new certificate and root."""
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX=PREFIX)
    h.enabled("rotating")
    assert h.sync()["ok"]
    before = json.loads(h.parameters(PREFIX)[param("rotating")])
    old_leaf = h.consul.get("/v1/agent/connect/ca/leaf/rotating")
    assert before["certPEM"] == old_leaf["CertPEM"]

    # A new key type makes Consul generate a new root (cross-signed by the old one).
    config = h.consul.get("/v1/connect/ca/configuration")
    key_type = (config.get("Config") or {}).get("PrivateKeyType") or "ec"
    new_type, new_bits = ("rsa", 2048) if key_type == "ec" else ("ec", 256)
    h.consul.put(
        "/v1/connect/ca/configuration",
        {
            "Provider": config["Provider"],
            "Config": {"PrivateKeyType": new_type, "PrivateKeyBits": new_bits},
        },
    )
    deadline = time.monotonic() + 60
    while True:
        leaf = h.consul.get("/v1/agent/connect/ca/leaf/rotating")
        if leaf["CertPEM"] != old_leaf["CertPEM"]:
            break
        assert time.monotonic() < deadline, "the agent did not re-issue the leaf"
        time.sleep(0.5)

    out = h.sync()
    assert out["ok"], out
    assert out["summary"]["update"] == 1
    assert out["requests"]["aws"]["writes"] == 1
    after = json.loads(h.parameters(PREFIX)[param("rotating")])
    current = h.consul.get("/v1/agent/connect/ca/leaf/rotating")
    assert after["certPEM"] == current["CertPEM"] != before["certPEM"]
    roots = h.consul.get("/v1/agent/connect/ca/roots")
    active = next(r for r in roots["Roots"] if r["Active"])
    assert after["rootCertPEM"] == active["RootCert"] != before["rootCertPEM"]
    assert h.sync()["summary"]["operations"] == 0
