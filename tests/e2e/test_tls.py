"""HTTPS only, with a CA generated at test time and read from Parameter Store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import botocore
import pytest
from consul_lambda_sync.host.handler import SyncFailed

from conftest import CA_PARAM

if TYPE_CHECKING:
    from cls_support import ConsulAgent

    from harness import Harness


def test_https_with_ca_from_parameter_store(h_tls: Harness) -> None:
    h = h_tls
    assert h.env()["CONSUL_HTTP_ADDR"].startswith("https://")
    h.enabled("secure", aliases="v1")
    out = h.sync()
    assert out["ok"]
    assert out["summary"]["create"] == 2
    assert sorted(h.consul.services()) == ["secure", "secure-v1"]
    assert h.sync()["summary"]["operations"] == 0


def test_https_without_the_ca_fails_clearly(h_tls: Harness) -> None:
    h = h_tls
    h.delenv("CONSUL_CACERT_PATH")
    h.enabled("secure")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert err.value.summary["verdict"] == "unreachable"
    assert "TLS" in str(err.value)
    assert h.consul.services() == {}

    proc = h.cli("plan")
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "TLS" in proc.stderr


def other_ca() -> str:
    """A real CA that did not sign the agent's certificate: the first of botocore's bundle."""
    bundle = (Path(botocore.__file__).parent / "cacert.pem").read_text()
    end = "-----END CERTIFICATE-----"
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)]
    return first + "\n"


def test_undocumented_ca_variables_do_not_replace_the_configured_ca(
    h_tls: Harness, consul_tls: ConsulAgent, tmp_path: Path
) -> None:
    """SSL_CERT_FILE, SSL_CERT_DIR, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE name the agent's CA;
    the configured CA (Parameter Store) is another one: the registrator trusts only the
    configured one, so it cannot reach the agent and writes nothing."""
    h = h_tls
    assert consul_tls.ca_pem
    right = tmp_path / "agent-ca.pem"
    right.write_text(consul_tls.ca_pem)
    h.put_secret(CA_PARAM, other_ca())
    h.setenv(
        SSL_CERT_FILE=str(right),
        SSL_CERT_DIR=str(tmp_path),
        REQUESTS_CA_BUNDLE=str(right),
        CURL_CA_BUNDLE=str(right),
    )
    h.enabled("secure")
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert err.value.summary["verdict"] == "unreachable"
    assert "TLS" in str(err.value)
    assert h.consul.services() == {}

    proc = h.cli("plan")
    assert proc.returncode == 4, proc.stderr
    assert "TLS" in proc.stderr

    # The same variables with the agent's CA configured: it is the configured CA that counts.
    h.put_secret(CA_PARAM, consul_tls.ca_pem)
    assert h.sync()["ok"]
    assert sorted(h.consul.services()) == ["secure"]
