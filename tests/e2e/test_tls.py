"""HTTPS only, with a CA generated at test time and read from Parameter Store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from consul_lambda_sync.host.handler import SyncFailed

if TYPE_CHECKING:
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
