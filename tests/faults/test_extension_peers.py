"""The extension data the registrator writes names its datacenter and the cluster
peers (issue 25, docs/contract.md §12.3), through both handlers on a real Consul
and moto. One agent cannot hold an active peering, so the proxy answers the three
peering reads with Consul's shapes (``GET /v1/peerings``, the services a peer
exports to us, one of their instances); everything else is the real agent: its
CA roots and the leaf, and the parameter in moto's Parameter Store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import cls_support as sup
import pytest

from test_transcript import HOSTS, RUNNERS, client, host_env, one_function_world

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
PREFIX = "/lambda-peers"
EAST_TD = "7a1c0f2e-1111-2222-3333-444455556666.consul"
EAST_ROOT = "-----BEGIN CERTIFICATE-----\nMIIBeastroot\n-----END CERTIFICATE-----\n"


@pytest.fixture
def servers(
    consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy, moto: sup.MotoSeeded
) -> Iterator[tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]]:
    one_function_world(consul, (consul_proxy, aws_proxy), moto, "solo")
    yield consul, consul_proxy, aws_proxy, moto
    consul_proxy.clear_faults()
    consul.clean()


def answer(match: str, file: str, uri: str = "") -> dict[str, object]:
    rule: dict[str, object] = {"match": match, "action": "answer", "file": str(HERE / file)}
    if uri:
        rule["uri"] = uri
    return rule


@pytest.mark.parametrize("host", HOSTS)
def test_the_extension_data_names_the_datacenter_and_the_active_peers(
    host: str, servers: tuple[sup.ConsulAgent, sup.Proxy, sup.Proxy, sup.MotoSeeded]
) -> None:
    _, consul_proxy, aws_proxy, moto = servers
    consul_proxy.faults(
        [
            answer("^GET /v1/peerings$", "peering.json"),
            answer("^GET /v1/catalog/services$", "peer-imported.json", uri="peer=east"),
            answer("^GET /v1/health/service/", "peer-health.json", uri="peer=east"),
        ]
    )
    env = host_env(consul_proxy.url, aws_proxy.url, CONSUL_EXTENSION_DATA_PREFIX=PREFIX)
    run = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert not run["raised"], run["result"]
    ssm = client("ssm", moto)
    stored = ssm.get_parameter(Name=f"{PREFIX}/default/default/solo", WithDecryption=True)
    value = json.loads(stored["Parameter"]["Value"])
    # Upstream's four fields, then ours.
    assert {"privateKeyPEM", "certPEM", "rootCertPEM", "trustDomain"} <= set(value)
    assert value["datacenter"] == "dc1"
    assert value["peers"] == [
        {
            "name": "east",
            "trustDomain": EAST_TD,
            "datacenter": "dc-east",
            "partition": "default",
            "rootCertPEMs": [EAST_ROOT],
            "remotePeerName": "our-dc1",
        }
    ], value["peers"]

    # In step: the next sync writes nothing; a peer that goes away is written out.
    again = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert again["result"]["requests"]["aws"]["calls"].get("PutParameter") is None, again["result"]
    consul_proxy.clear_faults()
    gone = RUNNERS[host](env, sup.schedule_event(), sup.FUNCTION_ARN)
    assert gone["result"]["requests"]["aws"]["calls"].get("PutParameter") == 1, gone["result"]
    stored = ssm.get_parameter(Name=f"{PREFIX}/default/default/solo", WithDecryption=True)
    assert "peers" not in json.loads(stored["Parameter"]["Value"])
