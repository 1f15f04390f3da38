"""Real Consul: a single ``consul agent -dev`` (plain, ACL default-deny, or HTTPS
only) and a three-server cluster, all on 127.0.0.1. The binary comes from
``$CONSUL_BIN`` or scripts/install-consul.sh (built once, cached)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import requests

from .constants import MANAGED_TAG, NODE
from .procs import REPO, free_port, run_script, spawn, stop_process, wait_for


def consul_binary() -> str:
    """``$CONSUL_BIN``, else the binary scripts/install-consul.sh builds and caches."""
    explicit = os.environ.get("CONSUL_BIN")
    if explicit:
        return explicit
    path = run_script("install-consul.sh")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"scripts/install-consul.sh printed {path!r}, which is not executable")
    return path


MESH_KINDS = ("terminating-gateway", "exported-services")


def acl_policy(mesh: bool = False) -> str:
    """The registrator's least-privilege policy, as documented (docs/acl-policy.hcl);
    ``mesh``: with the documented mesh wiring rule uncommented."""
    text = (REPO / "docs" / "acl-policy.hcl").read_text()
    if mesh:
        rule = '# mesh = "write"'
        assert rule in text, "docs/acl-policy.hcl documents the mesh rule"
        text = text.replace(rule, rule.removeprefix("# "))
    return text


class ConsulClient:
    """HTTP calls to one Consul address, with the management token when ACLs are on.
    Inspection and setup only: never counted as the registrator's requests."""

    addr: str
    management_token: Optional[str] = None
    ca_file: Optional[str] = None

    @property
    def verify(self) -> Any:
        # Per request: REQUESTS_CA_BUNDLE would override a session's verify.
        return self.ca_file or True

    def _session(self) -> requests.Session:
        s: Optional[requests.Session] = getattr(self, "_http", None)
        if s is None:
            s = self._http = requests.Session()
            if self.management_token:
                s.headers["X-Consul-Token"] = self.management_token
        return s

    def get(self, path: str, **params: str) -> Any:
        r = self._session().get(self.addr + path, params=params, timeout=60, verify=self.verify)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json() if r.content else None

    def put(self, path: str, body: Any = None, **params: str) -> Any:
        return self._write("PUT", path, body, params)

    def post(self, path: str, body: Any = None, **params: str) -> Any:
        return self._write("POST", path, body, params)

    def _write(self, method: str, path: str, body: Any, params: dict[str, str]) -> Any:
        r = self._session().request(
            method,
            self.addr + path,
            params=params,
            data=None if body is None else json.dumps(body),
            timeout=60,
            verify=self.verify,
        )
        r.raise_for_status()
        return r.json() if r.content else None

    def delete(self, path: str, **params: str) -> Any:
        r = self._session().delete(self.addr + path, params=params, timeout=60, verify=self.verify)
        r.raise_for_status()
        return r.json() if r.content else None

    def clean(self) -> None:
        """Removes the registrator's node, every service-defaults entry, and every
        terminating-gateway and exported-services entry (mesh wiring)."""
        self.put("/v1/catalog/deregister", {"Node": NODE})
        for name in self.entries():
            self.delete(f"/v1/config/service-defaults/{name}")
        for kind in MESH_KINDS:
            for e in self.get(f"/v1/config/{kind}") or []:
                self.delete(f"/v1/config/{kind}/{e['Name']}")

    def services(self) -> dict[str, dict[str, Any]]:
        """Every service on the registrator's node, by name."""
        ns = self.get(f"/v1/catalog/node-services/{NODE}")
        return {s["Service"]: s for s in (ns or {}).get("Services") or []}

    def managed_services(self) -> dict[str, dict[str, Any]]:
        """The registrator node's services that carry the managed-by tag."""
        return {n: s for n, s in self.services().items() if MANAGED_TAG in (s.get("Tags") or [])}

    def node(self) -> Optional[dict[str, Any]]:
        ns = self.get(f"/v1/catalog/node-services/{NODE}")
        return (ns or {}).get("Node")

    def entries(self) -> dict[str, dict[str, Any]]:
        return {e["Name"]: e for e in self.get("/v1/config/service-defaults") or []}

    def create_token(self, rules: str, name: str = "consul-lambda-sync") -> str:
        """A token with one new policy made of ``rules``; returns its SecretID."""
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        policy = self.put("/v1/acl/policy", {"Name": unique, "Rules": rules})
        token = self.put("/v1/acl/token", {"Description": name, "Policies": [{"ID": policy["ID"]}]})
        return str(token["SecretID"])

    def ready(self) -> bool:
        """A leader is known and the Connect CA has a root."""
        if not self.get("/v1/status/leader"):
            return False
        roots = self.get("/v1/agent/connect/ca/roots")
        return bool(roots and roots.get("Roots"))


class ConsulAgent(ConsulClient):
    """``consul agent -dev`` (in memory: an empty catalog on every start), with
    optional ACLs (default deny; ``management_token`` is the initial management
    token) or HTTPS only (a CA made with ``consul tls`` at start: ``ca_file``,
    ``ca_pem``)."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        acl: bool = False,
        tls: bool = False,
        node_name: str = "cls-test",
        port: Optional[int] = None,
    ) -> None:
        self.binary = binary
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.acl = acl
        self.tls = tls
        self.node_name = node_name
        self.port = port or free_port()
        self.scheme = "https" if tls else "http"
        self.addr = f"{self.scheme}://127.0.0.1:{self.port}"
        self.management_token = str(uuid.uuid4()) if acl else None
        self.ca_file: Optional[str] = None
        self.ca_pem: Optional[str] = None
        self.log = self.dir / "consul.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def _tls_files(self) -> dict[str, str]:
        for args in (("ca", "create"), ("cert", "create", "-server", "-dc", "dc1")):
            subprocess.run(
                [self.binary, "tls", *args],
                cwd=self.dir,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )
        self.ca_file = str(self.dir / "consul-agent-ca.pem")
        self.ca_pem = Path(self.ca_file).read_text()
        return {
            "ca": self.ca_file,
            "cert": str(self.dir / "dc1-server-consul-0.pem"),
            "key": str(self.dir / "dc1-server-consul-0-key.pem"),
        }

    def config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "datacenter": "dc1",
            "node_name": self.node_name,
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "ports": {
                "dns": -1,
                "grpc": -1,
                "grpc_tls": -1,
                "serf_wan": -1,
                "serf_lan": free_port(),
                "server": free_port(),
                "http": -1 if self.tls else self.port,
                "https": self.port if self.tls else -1,
            },
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
        return conf

    def start(self) -> ConsulAgent:
        cfg = self.dir / "agent.json"
        cfg.write_text(json.dumps(self.config()))
        self.proc = spawn(
            [self.binary, "agent", "-dev", "-config-file", str(cfg)], self.log, cwd=self.dir
        )
        try:
            wait_for(f"consul agent ({self.addr})", self.ready, 90, self.proc, self.log)
        except BaseException:
            self.stop()  # the caller never gets the agent: nothing else would stop it
            raise
        return self

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)

    def describe(self) -> dict[str, Any]:
        """What ``python -m cls_support serve`` prints for this agent."""
        out: dict[str, Any] = {"address": self.addr}
        if self.management_token:
            out["managementToken"] = self.management_token
        if self.ca_file:
            out["caFile"] = self.ca_file
            out["caPem"] = self.ca_pem
        return out


class ClusterNode(ConsulClient):
    """One agent of a :class:`ConsulCluster`: its own ports and data dir."""

    server = True
    kind = "server"

    def __init__(self, index: int, workdir: Path) -> None:
        self.index = index
        self.name = f"{self.kind}-{index}"
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.serf_lan_port = free_port()
        self.rpc_port = free_port()
        self.addr = f"http://127.0.0.1:{self.http_port}"
        self.rpc_addr = f"127.0.0.1:{self.rpc_port}"
        self.log = self.dir / "consul.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ClusterServer(ClusterNode):
    """A server of a :class:`ConsulCluster` (Raft on disk)."""


class ClusterClientAgent(ClusterNode):
    """A client agent (not a server) of a :class:`ConsulCluster`, with a data dir: what
    a registrator is usually pointed at. Its HTTP API forwards to the servers."""

    server = False
    kind = "client"


class ConsulCluster:
    """Three (``size``) Consul servers on 127.0.0.1, Raft on disk, and ``clients``
    client agents (data dirs too): an agent can be killed or stopped and restarted
    with its state, and the leader found. ``kill``, ``stop_server`` and ``restart``
    take a server's index or any agent (``cluster.clients[0]``)."""

    def __init__(self, binary: str, workdir: Path, size: int = 3, clients: int = 0) -> None:
        self.binary = binary
        self.dir = workdir
        self.servers = [ClusterServer(i, workdir) for i in range(size)]
        self.clients = [ClusterClientAgent(i, workdir) for i in range(clients)]

    @property
    def agents(self) -> list[ClusterNode]:
        return [*self.servers, *self.clients]

    @property
    def addr(self) -> str:
        """The HTTP address of the first running server."""
        return next(s.addr for s in self.servers if s.running)

    def _node(self, which: int | ClusterNode) -> ClusterNode:
        return self.servers[which] if isinstance(which, int) else which

    def _config(self, node: ClusterNode) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "datacenter": "dc1",
            "node_name": node.name,
            "server": node.server,
            "data_dir": str(node.dir / "data"),
            "bind_addr": "127.0.0.1",
            "client_addr": "127.0.0.1",
            "advertise_addr": "127.0.0.1",
            "retry_join": [f"127.0.0.1:{s.serf_lan_port}" for s in self.servers if s is not node],
            "retry_interval": "1s",
            "ports": {
                "dns": -1,
                "grpc": -1,
                "grpc_tls": -1,
                "serf_wan": -1,
                "https": -1,
                "http": node.http_port,
                "serf_lan": node.serf_lan_port,
                "server": node.rpc_port,
            },
            "performance": {"raft_multiplier": 1},
            "connect": {"enabled": True},
            "log_level": "warn",
            "ui_config": {"enabled": False},
        }
        if node.server:
            conf["bootstrap_expect"] = len(self.servers)
        return conf

    def _launch(self, node: ClusterNode) -> None:
        cfg = node.dir / "agent.json"
        cfg.write_text(json.dumps(self._config(node)))
        node.proc = spawn([self.binary, "agent", "-config-file", str(cfg)], node.log, cwd=node.dir)

    def start(self, timeout: float = 120) -> ConsulCluster:
        try:
            for s in self.agents:
                self._launch(s)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def leader(self) -> Optional[ClusterServer]:
        """The server every running server names as leader, if they agree on one."""
        seen = set()
        for s in self.servers:
            if not s.running:
                continue
            try:
                seen.add(s.get("/v1/status/leader") or "")
            except requests.RequestException:
                return None
        if len(seen) != 1:
            return None
        rpc = seen.pop()
        return next((s for s in self.servers if s.rpc_addr == rpc and s.running), None)

    def wait_leader(self, timeout: float = 60) -> ClusterServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.2)
        logs = "\n".join(
            f"{s.name}: {s.log.read_text(errors='replace')[-800:]}" for s in self.servers
        )
        raise RuntimeError(f"no leader among the running servers after {timeout}s\n{logs}")

    def wait_ready(self, timeout: float = 120) -> ClusterServer:
        """A leader agreed on by every running server, every running server a healthy
        voter (a server that rejoined is a non-voter until autopilot promotes it: losing
        another then loses the quorum), the Connect CA ready, and every running client
        agent knowing the leader."""
        leader = self.wait_leader(timeout)
        wait_for(
            "every running server a healthy voter",
            lambda: self.voters_healthy(leader),
            timeout,
            leader.proc,
            leader.log,
        )
        for node in [leader, *(c for c in self.clients if c.running)]:
            wait_for(f"consul {node.name} ready", node.ready, timeout, node.proc, node.log)
        return leader

    def voters_healthy(self, leader: ClusterServer) -> bool:
        """Whether autopilot reports every running server as a healthy voter."""
        try:
            health = leader.get("/v1/operator/autopilot/health") or {}
        except requests.RequestException:
            return False
        seen = {x.get("Name"): x for x in health.get("Servers") or []}
        running = [s.name for s in self.servers if s.running]
        return all(seen.get(n, {}).get("Voter") and seen.get(n, {}).get("Healthy") for n in running)

    def transfer_leader(self, timeout: float = 60) -> ClusterServer:
        """Moves the leadership to another server (``/v1/operator/raft/transfer-leader``,
        Raft picks which); returns the new leader."""
        old = self.wait_leader(timeout)
        old.post("/v1/operator/raft/transfer-leader")
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None and leader is not old:
                return self.wait_ready(timeout)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{old.name} still leads {timeout}s after a transfer")
            time.sleep(0.2)

    def rpc_servers(self, which: int | ClusterNode) -> list[ClusterServer]:
        """The servers an agent holds an established RPC connection to (Linux: its
        sockets in /proc): for a client agent, the server its requests go through."""
        node = self._node(which)
        if node.proc is None:
            return []
        inodes = set()
        fds = Path(f"/proc/{node.proc.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        ports = set()
        for table in ("tcp", "tcp6"):
            path = Path(f"/proc/{node.proc.pid}/net/{table}")
            if not path.exists():
                continue
            for line in path.read_text().splitlines()[1:]:
                f = line.split()
                if len(f) > 9 and f[3] == "01" and f[9] in inodes:  # 01: ESTABLISHED
                    ports.add(int(f[2].rsplit(":", 1)[1], 16))
        return [s for s in self.servers if s.rpc_port in ports and s is not node]

    def kill(self, which: int | ClusterNode) -> None:
        """SIGKILL one agent (a crash); its data dir stays for :meth:`restart`."""
        node = self._node(which)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(timeout=10)

    def stop_server(self, which: int | ClusterNode) -> None:
        """Stops one agent gracefully (SIGINT: it leaves the cluster)."""
        stop_process(self._node(which).proc, signal.SIGINT)

    def restart(
        self, which: int | ClusterNode, timeout: float = 120, wait: bool = True
    ) -> Optional[ClusterServer]:
        """Starts a stopped or killed agent again on its ports and data dir. Unless
        ``wait`` is false, waits until the cluster is ready again (:meth:`wait_ready`)
        and returns the leader."""
        node = self._node(which)
        if node.running:
            raise RuntimeError(f"{node.name} is running")
        self._launch(node)
        return self.wait_ready(timeout) if wait else None

    def stop(self) -> None:
        for s in [*self.clients, *self.servers]:
            stop_process(s.proc, signal.SIGINT)

    def describe(self) -> dict[str, Any]:
        return {"address": self.addr, "addresses": [s.addr for s in self.servers]}
