"""Fault-injection fixtures: a real Consul dev agent and a moto server, each behind
the recording, fault-injecting proxy of tests/support/proxy (all from cls_support).
The registrator (our Lambda handler, called in-process, or through the local Lambda
Runtime API) only ever talks to the proxies; the tests set up and inspect state directly.
"""

from __future__ import annotations

import io
import json
import types
import uuid
from typing import TYPE_CHECKING, Any

import boto3
import cls_support as sup
import pytest
from consul_lambda_sync.host import handler as handler_module
from consul_lambda_sync.host.log import JsonLogger

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Functions seeded for each test (cls_support.MotoSeeded: 0-3 aliases each).
FUNCTIONS = 30


@pytest.fixture(scope="session")
def workroot() -> Iterator[Path]:
    path = sup.make_workdir("faults")
    yield path
    sup.remove_workdir(path)


@pytest.fixture(scope="session")
def moto(workroot: Path) -> Iterator[sup.MotoSeeded]:
    server = sup.MotoSeeded(workroot).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def consul(workroot: Path) -> Iterator[sup.ConsulAgent]:
    agent = sup.ConsulAgent(sup.consul_binary(), workroot / "consul").start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def consul_proxy(consul: sup.ConsulAgent, workroot: Path) -> Iterator[sup.Proxy]:
    proxy = sup.Proxy("consul", consul.addr, workroot).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def aws_proxy(moto: sup.MotoSeeded, workroot: Path) -> Iterator[sup.Proxy]:
    proxy = sup.Proxy("aws", moto.url, workroot).start()
    yield proxy
    proxy.stop()


class Rig:
    """One test's view: the servers, the proxies, and the registrator's handler.
    ``consul`` is where the test reads Consul directly (never through the proxy)."""

    def __init__(
        self,
        moto: sup.MotoSeeded,
        consul: sup.ConsulClient,
        consul_proxy: sup.Proxy,
        aws_proxy: sup.Proxy,
        monkeypatch: pytest.MonkeyPatch,
        *,
        log_level: str = "info",
    ) -> None:
        self.moto = moto
        self.consul = consul
        self.consul_proxy = consul_proxy
        self.aws_proxy = aws_proxy
        self.env = {
            "AWS_ENDPOINT_URL": aws_proxy.url,
            **sup.AWS_TEST_ENV,
            "CONSUL_HTTP_ADDR": consul_proxy.url,
            "NODE_NAME": sup.NODE,
            "LOG_LEVEL": log_level,
        }
        for k in (
            "AWS_PROFILE",
            "CONSUL_HTTP_TOKEN",
            "CONSUL_HTTP_TOKEN_PATH",
            "CONSUL_CACERT",
            "CONSUL_CACERT_PATH",
            "DATACENTER",
            "ENTERPRISE",
            "PARTITIONS",
            "DRY_RUN",
        ):
            monkeypatch.delenv(k, raising=False)
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)  # boto3 reads AWS_ENDPOINT_URL from the environment
        # Direct (unproxied) clients for setting up and inspecting moto.
        self.lam = boto3.client(
            "lambda",
            endpoint_url=moto.url,
            region_name=sup.REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.log_level = log_level
        self.logs = io.StringIO()
        handler_module._AWS.clear()

    # -- the registrator -------------------------------------------------------------

    def sync(self) -> dict[str, Any]:
        """One full sync through the Lambda handler; raises what the handler raises."""
        self.logs.seek(0)
        self.logs.truncate()
        context = types.SimpleNamespace(
            invoked_function_arn=sup.FUNCTION_ARN, aws_request_id=str(uuid.uuid4())
        )
        log = JsonLogger(self.log_level, stream=self.logs)
        return dict(handler_module.handler(sup.schedule_event(), context, log=log))

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]

    # -- faults and counts ---------------------------------------------------------

    def faults(
        self, consul: list[dict[str, Any]] | None = None, aws: list[dict[str, Any]] | None = None
    ) -> None:
        self.consul_proxy.faults(consul or [])
        self.aws_proxy.faults(aws or [])

    def clear_faults(self) -> None:
        self.consul_proxy.clear_faults()
        self.aws_proxy.clear_faults()

    def reset_counts(self) -> None:
        self.consul_proxy.reset()
        self.aws_proxy.reset()

    def counts(self) -> dict[str, dict[str, Any]]:
        return {"consul": self.consul_proxy.stats(), "aws": self.aws_proxy.stats()}

    # -- state -------------------------------------------------------------------------

    def desired(self) -> dict[str, dict[str, Any]]:
        return self.moto.desired()

    def check(self) -> dict[str, Any]:
        return sup.compare(self.consul, self.desired())

    def registered(self) -> set[str]:
        return set(self.consul.managed_services())

    def arn(self, i: int) -> str:
        return f"arn:aws:lambda:{sup.REGION}:{sup.ACCOUNT}:function:fn-{i:05d}"

    def services_of(self, i: int) -> set[str]:
        name = f"fn-{i:05d}"
        return {s for s in self.desired() if s == name or s.startswith(name + "-")}


@pytest.fixture
def rig(
    moto: sup.MotoSeeded,
    consul: sup.ConsulAgent,
    consul_proxy: sup.Proxy,
    aws_proxy: sup.Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Rig]:
    consul_proxy.clear_faults()
    aws_proxy.clear_faults()
    consul.clean()
    moto.seed(FUNCTIONS)
    r = Rig(moto, consul, consul_proxy, aws_proxy, monkeypatch)
    r.reset_counts()
    yield r
    consul_proxy.clear_faults()
    aws_proxy.clear_faults()
