"""Cluster faults: the registrator against a real three-server Consul cluster (Raft on
disk) through a client agent with a data dir, while a cold sync of 500 functions
(1,250 services: 1,250 config entry writes and 10 catalog transactions) is writing.

The fault lands mid-sync by count, never by the clock: the recording proxy in front of
the client agent holds every config write after the k-th (a ``hold`` rule); while they
wait, the test kills or restarts an agent, then releases them into the fault (or, for an
agent kept down, restarts it once the engine has logged its first failed operation).
Each case asserts, reading Consul directly:

- the fault affected the sync (an answer other than 200, a connection without answer,
  or a retry in the engine's log), except a follower's restart, which the agent hides;
- no wrongful deregistration: no delete of any kind was planned or sent, nothing
  foreign is registered, and every service the tags ask for is there, unless the
  failed sync names it among its failures;
- every failure is reported: a sync that is not ok raised ``SyncFailed`` and its
  failures carry the reason;
- the next sync converges with exactly the minimal writes from the state the first one
  left (``cls_support.observed`` + ``minimal_txn_writes``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import cls_support as sup
import pytest
from consul_lambda_sync.host.handler import SyncFailed

from conftest import Rig

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FUNCTIONS = 500
CONFIG_WRITE = "PUT /v1/config"
# Config writes let through before the fault: about a quarter of the cold sync's.
K = 300
# Safety net only (a hung sync fails the test instead of hanging it); nothing waits on it.
HANG = 600.0


@pytest.fixture(scope="module")
def cluster(workroot: Path) -> Iterator[sup.ConsulCluster]:
    c = sup.ConsulCluster(sup.consul_binary(), workroot / "cluster", clients=1).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def agent(cluster: sup.ConsulCluster) -> sup.ClusterClientAgent:
    """The client agent the registrator talks to (through the proxy)."""
    node = cluster.clients[0]
    assert isinstance(node, sup.ClusterClientAgent)
    return node


@pytest.fixture(scope="module")
def agent_proxy(agent: sup.ClusterClientAgent, workroot: Path) -> Iterator[sup.Proxy]:
    proxy = sup.Proxy("consul", agent.addr, workroot).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def crig(
    moto: sup.MotoSeeded,
    cluster: sup.ConsulCluster,
    agent_proxy: sup.Proxy,
    aws_proxy: sup.Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Rig]:
    agent_proxy.clear_faults()
    aws_proxy.clear_faults()
    leader = cluster.wait_ready()
    clean(leader)
    moto.seed(FUNCTIONS)
    # Debug: the engine's "retrying" records are evidence of a fault.
    r = Rig(moto, leader, agent_proxy, aws_proxy, monkeypatch, log_level="debug")
    r.reset_counts()
    yield r
    agent_proxy.clear_faults()
    aws_proxy.clear_faults()


def clean(consul: sup.ConsulClient) -> None:
    """ConsulClient.clean, with the 1,250 entry deletes 8 at a time."""
    consul.put("/v1/catalog/deregister", {"Node": sup.NODE})
    names = list(consul.entries())

    def delete(name: str) -> None:
        _client(consul.addr).delete(f"/v1/config/service-defaults/{name}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(delete, names))
    assert not consul.entries()


_local = threading.local()


def _client(addr: str) -> sup.ConsulClient:
    """One ConsulClient (one requests.Session) per thread."""
    c: Optional[sup.ConsulClient] = getattr(_local, "client", None)
    if c is None or c.addr != addr:
        c = sup.ConsulClient()
        c.addr = addr
        _local.client = c
    return c


# -- one sync with faults timed by the proxy's counts ---------------------------------------


@dataclass
class Faulted:
    """A sync with faults: its result or its SyncFailed, and the proxy's counts."""

    out: Optional[dict[str, Any]] = None
    error: Optional[SyncFailed] = None
    at_fault: list[int] = field(default_factory=list)  # config writes let through, per fault
    counts: dict[str, Any] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        if self.error is not None:
            return self.error.summary
        assert self.out is not None
        return self.out


def config_writes(proxy: sup.Proxy) -> int:
    return int(proxy.stats()["ops"].get(CONFIG_WRITE, {}).get("count", 0))


# When a fault is applied: after the k-th config write (the later ones are held while
# the fault is applied), or once a condition on the sync's progress holds.
Trigger = Union[int, Callable[[], bool]]


def hold_after(proxy: sup.Proxy, k: int) -> None:
    """Holds every config write after the k-th (counted from now: ``k`` minus those seen)."""
    after = k - config_writes(proxy)
    assert after > 0, (k, config_writes(proxy))
    # Replacing the rules also lets go what an earlier hold held.
    proxy.faults([{"match": f"^{CONFIG_WRITE}$", "action": "hold", "after": after}])


def failed_operations(rig: Rig) -> int:
    """Operations the running sync has given up on so far (its error log lines)."""
    lines = rig.logs.getvalue().splitlines()
    return sum(1 for line in lines if '"msg": "operation"' in line and '"status": "failed"' in line)


def during_sync(rig: Rig, faults: list[tuple[Trigger, Callable[[], object]]]) -> Faulted:
    """One sync through the handler; each ``(when, action)`` in order: ``action`` runs
    once ``when`` is reached (an int k: while the config writes after the k-th are held;
    they then go on into whatever ``action`` did)."""
    proxy = rig.consul_proxy
    f = Faulted()
    crash: list[BaseException] = []

    def run() -> None:
        try:
            f.out = rig.sync()
        except SyncFailed as e:
            f.error = e
        except BaseException as e:  # reported below
            crash.append(e)

    first = faults[0][0]
    if isinstance(first, int):
        hold_after(proxy, first)
    thread = threading.Thread(target=run, name="sync")
    thread.start()
    deadline = time.monotonic() + HANG
    for n, (when, action) in enumerate(faults):

        def reached(when: Trigger = when) -> bool:
            if isinstance(when, int):
                return int(proxy.stats()["holding"]) > 0
            return when()

        while not reached():
            assert thread.is_alive(), f"the sync ended before fault {n + 1} ({when}): {crash}"
            assert time.monotonic() < deadline, f"fault {n + 1} ({when}) never due"
            time.sleep(0.02)
        stats = proxy.stats()
        through = config_writes_in(stats) - int(stats["holding"])
        assert not isinstance(when, int) or through >= when, (when, through)
        f.at_fault.append(through)
        action()
        later = faults[n + 1][0] if n + 1 < len(faults) else None
        if isinstance(later, int):
            hold_after(proxy, later)
        else:
            proxy.clear_faults()
    thread.join(HANG)
    assert not thread.is_alive(), "the sync hung"
    assert not crash, crash
    f.counts = proxy.stats()
    f.logs = rig.log_lines()
    return f


# -- what every case asserts -------------------------------------------------------------


def affected(f: Faulted) -> dict[str, int]:
    """Requests the fault visibly affected: Consul answers other than 200 (and
    connections the agent gave no answer to) at the proxy, and the engine's retries."""
    bad = 0
    for op in f.counts["ops"].values():
        bad += sum(n for status, n in op["status"].items() if status != "200")
    retries = sum(1 for line in f.logs if line.get("msg") == "retrying")
    return {"non_200": bad, "retries": retries}


def deletes_sent(counts: dict[str, Any]) -> int:
    return sum(int(op["count"]) for name, op in counts["ops"].items() if name.startswith("DELETE "))


def judge(rig: Rig, f: Faulted, desired: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The first sync's outcome, from Consul read directly; returns what it left."""
    total = config_writes_in(f.counts)
    # The fault landed mid-sync: writes went through before it and were made after it.
    assert all(0 < k < total for k in f.at_fault), (f.at_fault, total)
    state = sup.observed(rig.consul)
    result = f.result
    # No wrongful deregistration: no delete planned or sent, nothing foreign left.
    assert result["summary"]["delete"] == 0, result["summary"]
    assert deletes_sent(f.counts) == 0, f.counts["ops"]
    assert state["registered"] <= set(desired)
    assert set(state["entries"]) <= set(desired)
    incomplete = {
        n for n in desired if n not in state["registered"] or state["entries"].get(n) != desired[n]
    }
    if f.error is None:
        assert result["ok"], result
        assert not incomplete, sorted(incomplete)[:5]
        assert rig.check()["converged"]
    else:
        # Every failure reported: not ok, raised, and each failure names its reason; every
        # service the sync did not complete is among them.
        assert result["ok"] is False
        assert result["failures"] or result["message"], result
        assert all(x.get("error") for x in result["failures"]), result["failures"][:3]
        reported = {x["service"]["name"] for x in result["failures"]}
        assert incomplete <= reported, sorted(incomplete - reported)[:5]
    return state


def config_writes_in(counts: dict[str, Any]) -> int:
    return int(counts["ops"].get(CONFIG_WRITE, {}).get("count", 0))


def next_sync_is_minimal(rig: Rig, state: dict[str, Any], desired: dict[str, Any]) -> int:
    """Faults over, cluster ready: one sync converges with exactly the fewest writes."""
    expected = sup.minimal_txn_writes(
        state["entries"], desired, registered=state["registered"], node=state["node"]
    )
    rig.reset_counts()
    out = rig.sync()
    assert out["ok"], out
    check = rig.check()
    assert check["converged"], check
    counts = rig.counts()["consul"]
    assert counts["writes"] == expected, (counts["writes"], expected, counts["ops"])
    assert deletes_sent(counts) == 0
    return expected


def record(name: str, f: Faulted, extra: dict[str, Any]) -> None:
    """One line per case on stdout (pytest -s; RELIABILITY.md quotes them)."""
    result = f.result
    print(
        f"\n[cluster] {name}: ok={result['ok']} at_fault={f.at_fault} "
        f"config_writes={config_writes_in(f.counts)} writes={f.counts['writes']} "
        f"affected={affected(f)} operations={result['operations']} "
        f"failures={len(result['failures'])} config_statuses="
        f"{f.counts['ops'].get(CONFIG_WRITE, {}).get('status')} {extra}"
    )


# -- the cases ---------------------------------------------------------------------------------


def test_leader_killed_mid_sync(crig: Rig, cluster: sup.ConsulCluster) -> None:
    desired = crig.desired()
    leader = cluster.wait_leader()
    f = during_sync(crig, [(K, lambda: cluster.kill(leader.index))])
    hit = affected(f)
    assert hit["non_200"] + hit["retries"] > 0, hit
    new = cluster.wait_ready()
    assert new.index != leader.index
    crig.consul = new
    state = judge(crig, f, desired)
    cluster.restart(leader.index)
    crig.consul = cluster.wait_ready()
    writes = next_sync_is_minimal(crig, state, desired)
    record("leader killed", f, {"killed": leader.name, "next_writes": writes})


def test_follower_restarted_mid_sync(
    crig: Rig, cluster: sup.ConsulCluster, agent: sup.ClusterClientAgent
) -> None:
    desired = crig.desired()
    # The server the agent forwards through, made a follower if it leads: the one
    # restarted, so that the registrator's requests meet the restart. A fresh agent
    # holds one server connection (after a failure it may hold several; then any
    # follower among them).
    cluster.stop_server(agent)
    cluster.restart(agent)
    via = cluster.rpc_servers(agent)
    assert via, "the agent holds no server connection"
    for _ in range(3):
        leader = cluster.wait_leader()
        if any(s is not leader for s in via):
            break
        cluster.transfer_leader()
    follower = next(s for s in via if s is not leader)
    f = during_sync(
        crig,
        [
            (K, lambda: cluster.kill(follower.index)),
            (2 * K, lambda: cluster.restart(follower.index, wait=False)),
        ],
    )
    # The effect is not asserted: the agent moves the writes to another server by
    # itself (0-3 answers of 500 in the runs RELIABILITY.md reports).
    crig.consul = cluster.wait_ready()
    assert follower.running
    state = judge(crig, f, desired)
    writes = next_sync_is_minimal(crig, state, desired)
    record("follower restarted", f, {"restarted": follower.name, "next_writes": writes})


def test_agent_restarted_mid_sync(
    crig: Rig, cluster: sup.ConsulCluster, agent: sup.ClusterClientAgent
) -> None:
    desired = crig.desired()
    f = during_sync(
        crig,
        [
            (K, lambda: cluster.kill(agent)),
            (K + 16, lambda: cluster.restart(agent, wait=False)),
        ],
    )
    hit = affected(f)
    assert hit["non_200"] + hit["retries"] > 0, hit
    crig.consul = cluster.wait_ready()
    state = judge(crig, f, desired)
    writes = next_sync_is_minimal(crig, state, desired)
    record("agent restarted", f, {"restarted": agent.name, "next_writes": writes})


def test_agent_down_until_operations_fail(
    crig: Rig, cluster: sup.ConsulCluster, agent: sup.ClusterClientAgent
) -> None:
    desired = crig.desired()
    # Down for the rest of the sync: the engine probes the agent (one request at a
    # time, spaced by backoff) for its outage budget, then gives up on everything
    # waiting at once, instead of spending every request's own attempts.
    f = during_sync(crig, [(K, lambda: cluster.kill(agent))])
    hit = affected(f)
    assert hit["non_200"] + hit["retries"] > 0, hit
    assert f.error is not None
    assert failed_operations(crig) > 0
    # The outage's cost: requests the dead agent got no answer to, and retries
    # (about 3,800 before the shared budget; issue 23 asks for at most 400).
    assert hit["non_200"] + hit["retries"] <= 400, hit
    cluster.restart(agent, wait=False)
    crig.consul = cluster.wait_ready()
    state = judge(crig, f, desired)
    writes = next_sync_is_minimal(crig, state, desired)
    record("agent down", f, {"restarted": agent.name, "next_writes": writes})
