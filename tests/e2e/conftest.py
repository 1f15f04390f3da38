"""Fixtures: real Consul dev agents (plain, ACL, HTTPS) and a moto server, from
cls_support (tests/support).

Servers are started once per session on free loopback ports and stopped at the
end; every test starts from an empty moto and an empty registrator node. A
missing binary is an install problem: the fixtures fail, they never skip.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from cls_support import (
    ConsulAgent,
    MotoServer,
    consul_binary,
    make_workdir,
    remove_workdir,
)
from cls_support import acl_policy as documented_acl_policy

from harness import Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN_PARAM = "/consul-lambda-sync/e2e/acl-token"
CA_PARAM = "/consul-lambda-sync/e2e/ca-cert"


@pytest.fixture(scope="session")
def workroot() -> Iterator[Path]:
    path = make_workdir("e2e-session")
    yield path
    remove_workdir(path)


@pytest.fixture(scope="session")
def consul_bin() -> str:
    # Builds Consul on first use (scripts/install-consul.sh); failure is an error, not a skip.
    return consul_binary()


@pytest.fixture(scope="session")
def moto_server(workroot: Path) -> Iterator[MotoServer]:
    server = MotoServer(workroot).start()
    yield server
    server.stop()


def _agent(consul_bin: str, workroot: Path, name: str, **kw: bool) -> Iterator[ConsulAgent]:
    agent = ConsulAgent(consul_bin, workroot / name, node_name="cls-e2e", **kw).start()
    # scripts/test-e2e-consul-1.15.sh runs this suite on an old release line: make
    # sure every agent really is that release.
    expected = os.environ.get("CLS_EXPECT_CONSUL_VERSION")
    if expected:
        version = agent.get("/v1/agent/self")["Config"]["Version"]
        assert version == expected, f"Consul {version} is running, {expected} was expected"
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def consul_plain(consul_bin: str, workroot: Path) -> Iterator[ConsulAgent]:
    yield from _agent(consul_bin, workroot, "plain")


@pytest.fixture(scope="session")
def consul_acl(consul_bin: str, workroot: Path) -> Iterator[ConsulAgent]:
    yield from _agent(consul_bin, workroot, "acl", acl=True)


@pytest.fixture(scope="session")
def consul_tls(consul_bin: str, workroot: Path) -> Iterator[ConsulAgent]:
    yield from _agent(consul_bin, workroot, "tls", tls=True)


def _harness(moto: MotoServer, agent: ConsulAgent, monkeypatch: pytest.MonkeyPatch) -> Harness:
    moto.reset()
    agent.clean()
    return Harness(moto, agent, monkeypatch)


@pytest.fixture
def h(
    moto_server: MotoServer, consul_plain: ConsulAgent, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    return _harness(moto_server, consul_plain, monkeypatch)


@pytest.fixture(scope="session")
def acl_policy() -> str:
    return documented_acl_policy()


@pytest.fixture
def h_acl(
    moto_server: MotoServer,
    consul_acl: ConsulAgent,
    acl_policy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Harness:
    """ACLs on (default deny); the registrator's least-privilege token is in Parameter Store."""
    harness = _harness(moto_server, consul_acl, monkeypatch)
    token = consul_acl.create_token(acl_policy)
    harness.put_secret(TOKEN_PARAM, token)
    harness.setenv(CONSUL_HTTP_TOKEN_PATH=TOKEN_PARAM)
    harness.token = token
    return harness


@pytest.fixture
def h_tls(
    moto_server: MotoServer, consul_tls: ConsulAgent, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    """HTTPS only, with a CA made at test time and read from Parameter Store."""
    harness = _harness(moto_server, consul_tls, monkeypatch)
    assert consul_tls.ca_pem
    harness.put_secret(CA_PARAM, consul_tls.ca_pem)
    harness.setenv(CONSUL_CACERT_PATH=CA_PARAM, CONSUL_HTTP_SSL="true")
    return harness
