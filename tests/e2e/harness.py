"""The registrator's environment on the real servers of cls_support (a Consul dev
agent and a moto server, started by conftest.py), with helpers to drive Lambda,
SSM, events and the handler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import uuid
from typing import TYPE_CHECKING, Any, Optional

import boto3
from cls_support import (
    ACCOUNT,
    AWS_TEST_ENV,
    ENABLED,
    MANAGED_TAG,
    NODE,
    PREFIX,
    REGION,
    REPO,
    create_aliases,
    function_zip,
    schedule_event,
)
from consul_lambda_sync.host import handler as handler_module
from consul_lambda_sync.host.demo import cloudtrail_event

if TYPE_CHECKING:
    from cls_support import ConsulAgent, MotoServer

__all__ = ["ACCOUNT", "ENABLED", "MANAGED_TAG", "NODE", "PREFIX", "REGION", "REPO", "Harness"]


class Harness:
    """The registrator's environment plus helpers to drive Lambda, SSM and Consul."""

    def __init__(self, moto: MotoServer, consul: ConsulAgent, monkeypatch: Any) -> None:
        self.moto = moto
        self.consul = consul
        self.mp = monkeypatch
        # The registrator's ACL token, when the fixture made one (h_acl).
        self.token: Optional[str] = None
        for k in list(os.environ):
            if k.startswith(("CONSUL_", "AWS_")) or k in (
                "NODE_NAME",
                "DATACENTER",
                "ENTERPRISE",
                "PARTITIONS",
                "PAGE_SIZE",
                "LOG_LEVEL",
            ):
                monkeypatch.delenv(k, raising=False)
        self.base_env = {
            "AWS_ENDPOINT_URL": moto.url,
            **AWS_TEST_ENV,
            "CONSUL_HTTP_ADDR": consul.addr,
            "NODE_NAME": NODE,
            "LOG_LEVEL": "info",
        }
        for k, v in self.base_env.items():
            monkeypatch.setenv(k, v)
        self.lam = boto3.client("lambda", endpoint_url=moto.url, region_name=REGION)
        self.ssm = boto3.client("ssm", endpoint_url=moto.url, region_name=REGION)
        iam = boto3.client("iam", endpoint_url=moto.url, region_name=REGION)
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")
        self.role = role["Role"]["Arn"]
        self._zip = function_zip()
        # Aliases the tags name that the functions do not have (every other one
        # is created with the function or the tag, as in a real account).
        self.missing_aliases: tuple[str, ...] = ()
        # Handler-level client cache must not outlive a test.
        handler_module._AWS.clear()

    # -- environment -------------------------------------------------------------------

    def setenv(self, **env: str) -> None:
        for k, v in env.items():
            self.mp.setenv(k, v)

    def delenv(self, *names: str) -> None:
        for k in names:
            self.mp.delenv(k, raising=False)

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- Lambda -------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def create_function(self, name: str, tags: Optional[dict[str, str]] = None) -> str:
        out = self.lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role,
            Handler="index.handler",
            Code={"ZipFile": self._zip},
            Tags=tags or {},
        )
        create_aliases(self.lam, name, tags or {}, skip=self.missing_aliases)
        return str(out["FunctionArn"])

    def enabled(self, name: str, **extra: str) -> str:
        tags = {ENABLED: "true"}
        tags.update({PREFIX + k.replace("_", "-"): v for k, v in extra.items()})
        return self.create_function(name, tags)

    def tag(self, name: str, tags: dict[str, str]) -> None:
        self.lam.tag_resource(Resource=self.arn(name), Tags=tags)
        create_aliases(self.lam, name, tags, skip=self.missing_aliases)

    def untag(self, name: str, keys: list[str]) -> None:
        self.lam.untag_resource(Resource=self.arn(name), TagKeys=keys)

    def delete_function(self, name: str) -> None:
        self.lam.delete_function(FunctionName=name)

    # -- SSM ----------------------------------------------------------------------------

    def put_secret(self, name: str, value: str) -> None:
        self.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    def parameters(self, prefix: str) -> dict[str, str]:
        out: dict[str, str] = {}
        kwargs: dict[str, Any] = {"Path": prefix, "Recursive": True, "WithDecryption": True}
        while True:
            page = self.ssm.get_parameters_by_path(**kwargs)
            for p in page.get("Parameters") or []:
                out[p["Name"]] = p["Value"]
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]

    # -- events -------------------------------------------------------------------------

    @staticmethod
    def schedule() -> dict[str, Any]:
        return schedule_event()

    @staticmethod
    def cloudtrail(
        event_name: str, request: dict[str, Any], response: Optional[dict[str, Any]] = None
    ) -> dict[str, Any]:
        return cloudtrail_event(event_name, ACCOUNT, REGION, request, response)

    def tag_event(self, name: str, tags: dict[str, str]) -> dict[str, Any]:
        return self.cloudtrail("TagResource20170331v2", {"resource": self.arn(name), "tags": tags})

    def untag_event(self, name: str, keys: list[str]) -> dict[str, Any]:
        return self.cloudtrail(
            "UntagResource20170331v2", {"resource": self.arn(name), "tagKeys": keys}
        )

    def delete_event(self, name: str) -> dict[str, Any]:
        return self.cloudtrail("DeleteFunction20150331", {"functionName": name})

    def create_event(self, name: str) -> dict[str, Any]:
        return self.cloudtrail(
            "CreateFunction20150331",
            {"functionName": name},
            {"functionName": name, "functionArn": self.arn(name)},
        )

    # -- the registrator ---------------------------------------------------------------

    @staticmethod
    def context() -> Any:
        """What Lambda passes: the account comes from the function's own ARN."""
        return types.SimpleNamespace(
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consul-lambda-sync",
            aws_request_id=str(uuid.uuid4()),
        )

    def handle(self, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return dict(handler_module.handler(event, self.context(), **kwargs))

    def sync(self, **kwargs: Any) -> dict[str, Any]:
        return self.handle(self.schedule(), **kwargs)

    def cli(
        self,
        *args: str,
        env: Optional[dict[str, str]] = None,
        timeout: float = 120,
        log_level: Optional[str] = None,
        prelude: Optional[str] = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the CLI at its default level (the environment's ``LOG_LEVEL=info`` is
        the handler's), or with ``LOG_LEVEL=log_level``; ``prelude``: Python code run
        before it (in the same process)."""
        env = dict(env if env is not None else self.env())
        env.pop("LOG_LEVEL", None)
        if log_level is not None:
            env["LOG_LEVEL"] = log_level
        run = ["-m", "consul_lambda_sync.host"]
        if prelude is not None:
            main = "import runpy; runpy.run_module('consul_lambda_sync.host', run_name='__main__')"
            run = ["-c", f"import sys; sys.argv[1:] = {list(args)!r}\n{prelude}\n{main}"]
            args = ()
        return subprocess.run(
            [sys.executable, *run, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
