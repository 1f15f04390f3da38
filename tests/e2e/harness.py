"""Real servers for the end-to-end tests: a Consul dev agent and a moto server.

Both are started on free loopback ports and stopped at the end. A missing binary
is an install problem: the fixtures fail, they never skip.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import requests
from consul_lambda_sync.host import handler as handler_module
from consul_lambda_sync.host.demo import cloudtrail_event

REPO = Path(__file__).resolve().parents[2]
PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"
ENABLED = PREFIX + "enabled"
ACCOUNT = "123456789012"
REGION = "us-east-1"
NODE = "lambdas"
MANAGED_TAG = "managed-by-lambda-registrator"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float = 60.0,
    proc: Any = None,
    log: Optional[Path] = None,
) -> None:
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")
        try:
            if check():
                return
        except Exception as e:
            last = e
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready after {timeout}s (last error: {last}):\n{tail}")


def stop(proc: Optional[subprocess.Popen[bytes]]) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def consul_binary() -> str:
    """The consul binary: $CONSUL_BIN, or built/cached by scripts/install-consul.sh."""
    explicit = os.environ.get("CONSUL_BIN")
    if explicit:
        return explicit
    out = subprocess.run(
        [str(REPO / "scripts" / "install-consul.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=3600,
    )
    path = out.stdout.strip().splitlines()[-1]
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"scripts/install-consul.sh printed {path!r}, which is not executable")
    return path


class MotoServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> MotoServer:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(
                "moto server",
                lambda: requests.get(self.url + "/moto-api/", timeout=2).ok,
                timeout=60,
                proc=self.proc,
                log=self.log,
            )
        except BaseException:
            stop(self.proc)  # the fixture never yields: nothing else would stop it
            raise
        return self

    def reset(self) -> None:
        requests.post(self.url + "/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        stop(self.proc)


class ConsulAgent:
    """``consul agent -dev`` with optional ACLs (default deny) or HTTPS only."""

    def __init__(self, binary: str, workdir: Path, *, acl: bool = False, tls: bool = False) -> None:
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.acl = acl
        self.tls = tls
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        self.addr = f"{self.scheme}://127.0.0.1:{self.port}"
        self.management_token = str(uuid.uuid4()) if acl else None
        self.ca_file: Optional[str] = None
        self.ca_pem: Optional[str] = None
        self.log = self.dir / "consul.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def _tls_files(self) -> dict[str, str]:
        def run(*args: str) -> None:
            subprocess.run(
                [self.binary, "tls", *args],
                cwd=self.dir,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )

        run("ca", "create")
        run("cert", "create", "-server", "-dc", "dc1")
        self.ca_file = str(self.dir / "consul-agent-ca.pem")
        self.ca_pem = Path(self.ca_file).read_text()
        return {
            "ca": self.ca_file,
            "cert": str(self.dir / "dc1-server-consul-0.pem"),
            "key": str(self.dir / "dc1-server-consul-0-key.pem"),
        }

    def start(self) -> ConsulAgent:
        ports = {
            "dns": -1,
            "grpc": -1,
            "grpc_tls": -1,
            "serf_wan": -1,
            "serf_lan": free_port(),
            "server": free_port(),
            "http": -1 if self.tls else self.port,
            "https": self.port if self.tls else -1,
        }
        conf: dict[str, Any] = {
            "datacenter": "dc1",
            "node_name": "cls-e2e",
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "ports": ports,
            "log_level": "warn",
            "connect": {"enabled": True},
        }
        if self.acl:
            conf["acl"] = {
                "enabled": True,
                "default_policy": "deny",
                "enable_token_persistence": False,
                "tokens": {
                    "initial_management": self.management_token,
                    "agent": self.management_token,
                },
            }
        if self.tls:
            files = self._tls_files()
            conf["tls"] = {
                "defaults": {
                    "ca_file": files["ca"],
                    "cert_file": files["cert"],
                    "key_file": files["key"],
                    "verify_incoming": False,
                    "verify_outgoing": True,
                },
                "internal_rpc": {"verify_server_hostname": False},
            }
        cfg = self.dir / "agent.json"
        cfg.write_text(json.dumps(conf))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "agent", "-dev", "-config-file", str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )

        def ready() -> bool:
            leader = self.get("/v1/status/leader")
            if not leader:
                return False
            roots = self.get("/v1/agent/connect/ca/roots")
            return bool(roots and roots.get("Roots"))

        try:
            wait_for(f"consul agent ({self.addr})", ready, timeout=90, proc=self.proc, log=self.log)
        except BaseException:
            stop(self.proc)  # the fixture never yields: nothing else would stop it
            raise
        return self

    def stop(self) -> None:
        stop(self.proc)

    # -- inspection with the management token (not counted by the host) -------------

    @property
    def verify(self) -> Any:
        # Per request: REQUESTS_CA_BUNDLE would override a session's verify.
        return self.ca_file or True

    def _session(self) -> requests.Session:
        s = requests.Session()
        if self.management_token:
            s.headers["X-Consul-Token"] = self.management_token
        return s

    def get(self, path: str, **params: str) -> Any:
        r = self._session().get(self.addr + path, params=params, timeout=10, verify=self.verify)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json() if r.content else None

    def put(self, path: str, body: Any = None, **params: str) -> Any:
        r = self._session().put(
            self.addr + path,
            params=params,
            data=None if body is None else json.dumps(body),
            timeout=10,
            verify=self.verify,
        )
        r.raise_for_status()
        return r.json() if r.content else None

    def delete(self, path: str, **params: str) -> Any:
        r = self._session().delete(self.addr + path, params=params, timeout=10, verify=self.verify)
        r.raise_for_status()
        return r.json() if r.content else None

    def clean(self) -> None:
        """Removes the registrator's node and every service-defaults entry."""
        self.put("/v1/catalog/deregister", {"Node": NODE})
        for e in self.get("/v1/config/service-defaults") or []:
            self.delete(f"/v1/config/service-defaults/{e['Name']}")

    def services(self) -> dict[str, dict[str, Any]]:
        ns = self.get(f"/v1/catalog/node-services/{NODE}")
        return {s["Service"]: s for s in (ns or {}).get("Services") or []}

    def node(self) -> Optional[dict[str, Any]]:
        ns = self.get(f"/v1/catalog/node-services/{NODE}")
        return (ns or {}).get("Node")

    def entries(self) -> dict[str, dict[str, Any]]:
        return {e["Name"]: e for e in self.get("/v1/config/service-defaults") or []}

    def create_token(self, rules: str, name: str = "consul-lambda-sync") -> str:
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        policy = self.put("/v1/acl/policy", {"Name": unique, "Rules": rules})
        token = self.put("/v1/acl/token", {"Description": name, "Policies": [{"ID": policy["ID"]}]})
        return str(token["SecretID"])


def function_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


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
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
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
        return str(out["FunctionArn"])

    def enabled(self, name: str, **extra: str) -> str:
        tags = {ENABLED: "true"}
        tags.update({PREFIX + k.replace("_", "-"): v for k, v in extra.items()})
        return self.create_function(name, tags)

    def tag(self, name: str, tags: dict[str, str]) -> None:
        self.lam.tag_resource(Resource=self.arn(name), Tags=tags)

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
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/consul-lambda-sync-cron"],
            "detail": {},
        }

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
        self, *args: str, env: Optional[dict[str, str]] = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "consul_lambda_sync.host", *args],
            env=env if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def make_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"cls-e2e-{name}-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
