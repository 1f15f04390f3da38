"""Faults injected between the registrator and real servers (Consul dev agent, moto).

The proxies of tests/support/proxy answer 5xx or 429 instead of the server, reset the
connection (before forwarding, or after the server applied the request), or add
latency. Each test checks, on the real servers:

- no wrongful deregistration: a live function's services are never removed;
- every failure is reported (the summary, the log) and the handler raises, so
  that Lambda records an error and EventBridge retries the event;
- one sync after the faults stop converges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import cls_support as sup
import pytest
from consul_lambda_sync.host.handler import SyncFailed

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Rig

PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"


def cold(rig: Rig) -> set[str]:
    """A clean first sync; returns the registered services."""
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    rig.reset_counts()
    return rig.registered()


def injected(rig: Rig) -> tuple[int, int]:
    c = rig.counts()
    return int(c["consul"]["injected"]), int(c["aws"]["injected"])


def create_function(rig: Rig, name: str, tags: dict[str, str]) -> None:
    rig.lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=f"arn:aws:iam::{sup.ACCOUNT}:role/bench-fn",
        Handler="index.handler",
        Code={"ZipFile": sup.function_zip()},
        Tags=tags,
    )
    sup.create_aliases(rig.lam, name, tags)


def converges_after(rig: Rig) -> dict[str, Any]:
    """Faults off: one sync must succeed and leave Consul as the tags ask."""
    rig.clear_faults()
    out = rig.sync()
    assert out["ok"], out
    check = rig.check()
    assert check["converged"], check
    return out


# -- transient faults: absorbed by retries ---------------------------------------------


def test_consul_5xx_on_writes_is_retried(rig: Rig) -> None:
    rig.faults(
        consul=[
            {"match": "^(PUT|DELETE) ", "action": "status", "status": 503, "every": 4, "times": 15}
        ]
    )
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    consul_faults, _ = injected(rig)
    assert consul_faults == 15
    # Each injected 503 cost exactly one more attempt, nothing else was repeated
    # (catalog writes go through /v1/txn: ceil(services/128) transactions).
    assert rig.counts()["consul"]["writes"] == sup.minimal_txn_writes({}, rig.desired()) + 15


def test_throttling_429_from_consul_and_aws_is_retried(rig: Rig) -> None:
    rig.faults(
        consul=[{"match": "^GET ", "action": "status", "status": 429, "times": 3}],
        aws=[{"match": "^GetResources$", "action": "status", "status": 429, "times": 2}],
    )
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    assert injected(rig) == (3, 2)
    pages = rig.moto.reference_pages()
    assert rig.counts()["aws"]["ops"]["GetResources"]["count"] == pages + 2


# The spellings AWS really uses for throttling: the JSON protocols' exception
# (tagging, SSM), Lambda's REST 429, and a message-only "Rate exceeded".
THROTTLES = [
    ("GetResources", {"status": 400, "code": "ThrottlingException", "message": "Rate exceeded"}),
    (
        "ListTags",
        {"status": 429, "code": "TooManyRequestsException", "message": "Rate exceeded"},
    ),
    ("GetParameter", {"status": 400, "code": "ThrottlingException", "message": "Rate exceeded"}),
    ("GetResources", {"status": 400, "code": "LimitExceededException", "message": "Rate exceeded"}),
]


@pytest.mark.parametrize(
    ("op", "answer"), THROTTLES, ids=lambda v: v if isinstance(v, str) else v["code"]
)
def test_aws_throttling_is_retried_and_never_deregisters(
    rig: Rig, op: str, answer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token comes from Parameter Store (GetParameter), and two functions are
    # gone, so their absence is confirmed with ListTags: every call throttled
    # here is on the path of a sync that also deletes.
    ssm = boto3.client(
        "ssm",
        endpoint_url=rig.moto.url,
        region_name=sup.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ssm.put_parameter(Name="/cls/token", Value="t0ken", Type="SecureString", Overwrite=True)
    monkeypatch.setenv("CONSUL_HTTP_TOKEN_PATH", "/cls/token")
    before = cold(rig)
    gone = rig.services_of(5) | rig.services_of(6)
    for i in (5, 6):
        rig.lam.delete_function(FunctionName=f"fn-{i:05d}")
    rig.faults(aws=[{"match": f"^{op}$", "action": "status", "times": 3, **answer}])
    out = rig.sync()
    assert out["ok"], out
    assert injected(rig) == (0, 3)
    # Each throttled call was retried until it passed: no more, no fewer calls.
    ops = rig.counts()["aws"]["ops"]
    assert ops[op]["count"] >= 4, ops[op]
    assert ops[op]["status"].get(str(answer["status"]), 0) == 3, ops[op]
    # Exactly the deleted functions' services went; no live one did.
    assert rig.registered() == before - gone
    assert rig.check()["converged"]
    rig.reset_counts()
    assert rig.sync()["ok"]
    assert rig.counts()["consul"]["writes"] == 0


def test_connection_resets_are_retried(rig: Rig) -> None:
    rig.faults(
        consul=[{"match": "^PUT ", "action": "reset", "every": 5, "times": 10}],
        aws=[{"match": "^GetResources$", "action": "reset", "times": 1}],
    )
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    assert injected(rig) == (10, 1)


def test_lost_responses_of_applied_writes_are_harmless(rig: Rig) -> None:
    # The server applies the write, the client never sees the answer: the engine
    # reads back before it writes again (same service, nothing doubled). Catalog
    # registrations go through /v1/txn, config entries carry ?cas=.
    rig.faults(
        consul=[
            # One transaction carries every registration here; its answer is lost.
            {"match": "^PUT /v1/txn$", "action": "drop", "times": 1},
            {"match": "^PUT /v1/config$", "action": "drop", "times": 4},
        ]
    )
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    assert injected(rig) == (5, 0)
    assert rig.registered() == set(rig.desired())


# -- agents without /v1/txn, or with a smaller request limit ------------------------


@pytest.mark.parametrize("status", [404, 405])
def test_agent_refusing_txn_gets_single_requests(rig: Rig, status: int) -> None:
    """An agent (or a proxy in front of it) that has no /v1/txn: after the first
    refusal every catalog change goes as a single request, and nothing is lost."""
    rig.faults(consul=[{"match": "^PUT /v1/txn$", "action": "status", "status": status}])
    rig.consul_proxy.clear_transcript()
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    ops = [e["op"] for e in rig.consul_proxy.transcript()]
    assert ops.count("PUT /v1/txn") == 1  # refused once, never tried again this run
    # The node first, then one registration per service (the node's own catalog
    # registration carries the first service).
    assert ops.count("PUT /v1/catalog/register") == len(rig.desired())
    # Deletions too: two functions gone, their services deregistered one by one.
    gone = rig.services_of(5) | rig.services_of(6)
    for i in (5, 6):
        rig.lam.delete_function(FunctionName=f"fn-{i:05d}")
    rig.consul_proxy.clear_transcript()
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    ops = [e["op"] for e in rig.consul_proxy.transcript()]
    assert ops.count("PUT /v1/catalog/deregister") == len(gone)
    rig.reset_counts()
    assert rig.sync()["ok"]
    assert rig.counts()["consul"]["writes"] == 0


def test_smaller_txn_request_limit_splits_transactions(rig: Rig) -> None:
    """An agent with a smaller txn_max_req_len answers 413 to a large transaction:
    the engine halves the batch until each part fits, and the sync converges."""
    limit = 6000  # bytes: the cold sync's one transaction of ~75 operations is ~4x this
    rig.faults(
        consul=[{"match": "^PUT /v1/txn$", "action": "status", "status": 413, "min_body": limit}]
    )
    rig.consul_proxy.clear_transcript()
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]
    txns = [e for e in rig.consul_proxy.transcript() if e["op"] == "PUT /v1/txn"]
    refused = [len(e["body"]) for e in txns if e.get("fault")]
    applied = [len(e["body"]) for e in txns if not e.get("fault")]
    assert refused, "no transaction was over the limit"
    assert sum(applied) >= len(rig.desired())  # every registration landed in some part
    assert max(applied) < min(refused)
    rig.reset_counts()
    assert rig.sync()["ok"]
    assert rig.counts()["consul"]["writes"] == 0


def test_latency_changes_no_counts(rig: Rig) -> None:
    cold(rig)
    rig.sync()
    quiet = rig.counts()
    rig.reset_counts()
    rig.faults(
        consul=[{"match": "", "action": "delay", "delay_ms": 300}],
        aws=[{"match": "", "action": "delay", "delay_ms": 300}],
    )
    out = rig.sync()
    assert out["ok"], out
    slow = rig.counts()
    for side in ("consul", "aws"):
        assert slow[side]["requests"] == quiet[side]["requests"], side
    assert slow["consul"]["writes"] == 0


def test_consul_read_timeouts_are_retried(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_TIMEOUT_MS", "1000")
    rig.faults(consul=[{"match": "^GET ", "action": "delay", "delay_ms": 2500, "times": 2}])
    out = rig.sync()
    assert out["ok"], out
    assert rig.check()["converged"]


# -- persistent faults: reported, raised, nothing wrongly removed, then converge --------


def test_failed_consul_writes_are_reported_and_raise(rig: Rig) -> None:
    before = cold(rig)
    # Drift on two functions (5 services), one new function (4 services), one
    # disabled function: its deregistration is rightful and does not use PUT /v1/config.
    rig.lam.tag_resource(Resource=rig.arn(1), Tags={PREFIX + "payload-passthrough": "true"})
    rig.lam.tag_resource(Resource=rig.arn(2), Tags={PREFIX + "payload-passthrough": "true"})
    create_function(rig, "fresh", {PREFIX + "enabled": "true", PREFIX + "aliases": "a+b+c"})
    rig.lam.tag_resource(Resource=rig.arn(3), Tags={PREFIX + "enabled": "false"})
    updated = rig.services_of(1) | rig.services_of(2)
    created = {"fresh", "fresh-a", "fresh-b", "fresh-c"}
    disabled = {s for s in before if s == "fn-00003" or s.startswith("fn-00003-")}
    assert len(updated) == 5
    assert len(disabled) == 4

    rig.faults(consul=[{"match": "^PUT /v1/config$", "action": "status", "status": 500}])
    with pytest.raises(SyncFailed) as err:
        rig.sync()
    summary = err.value.summary
    assert summary["ok"] is False
    failures = summary["failures"]
    failed = {f["service"]["name"] for f in failures if f["status"] == "failed"}
    skipped = {f["service"]["name"] for f in failures if f["status"] == "skipped"}
    # Every write that could not be made is reported, with the server's answer...
    assert failed == updated | created
    assert all("500" in f["error"] for f in failures if f["status"] == "failed")
    # ...and so is every step that was not attempted because of it (the registrations).
    assert skipped == created
    assert summary["operations"]["failed"] == len(failed)
    assert summary["operations"]["skipped"] == len(skipped)
    assert str(len(failed)) in str(err.value)
    logged = [
        line
        for line in rig.log_lines()
        if line.get("msg") == "operation" and line.get("status") == "failed"
    ]
    assert {line["service"] for line in logged} == failed
    # Nothing live was removed; the disabled function's services were (rightly).
    assert rig.registered() == before - disabled

    converges_after(rig)


def test_whole_listing_failure_removes_nothing(rig: Rig) -> None:
    before = cold(rig)
    for i in (5, 6):
        rig.lam.delete_function(FunctionName=f"fn-{i:05d}")
    rig.faults(aws=[{"match": "^GetResources$", "action": "status", "status": 500}])
    with pytest.raises(SyncFailed) as err:
        rig.sync()
    assert "inventory was incomplete" in str(err.value)
    assert rig.registered() == before
    assert rig.counts()["consul"]["writes"] == 0
    converges_after(rig)


def test_partial_listing_failure_removes_no_live_function(rig: Rig) -> None:
    rig.moto.seed(150)  # several GetResources pages
    before = cold(rig)
    deleted = {5, 6, 7}
    gone = set().union(*(rig.services_of(i) for i in deleted))
    for i in deleted:
        rig.lam.delete_function(FunctionName=f"fn-{i:05d}")
    live = set(rig.desired())
    # The first page is served, every later one fails (after the SDK's retries).
    rig.faults(aws=[{"match": "^GetResources$", "action": "status", "status": 500, "after": 1}])
    with pytest.raises(SyncFailed) as err:
        rig.sync()
    assert "inventory was incomplete" in str(err.value)
    after = rig.registered()
    assert live <= after, sorted(live - after)[:5]
    assert before - after <= gone
    converges_after(rig)
    assert not (rig.registered() & gone)


def test_unconfirmed_absence_keeps_services(rig: Rig) -> None:
    before = cold(rig)
    for i in (5, 6):
        rig.lam.delete_function(FunctionName=f"fn-{i:05d}")
    # The listing works; the ListTags that must confirm each absence fails.
    rig.faults(aws=[{"match": "^ListTags$", "action": "status", "status": 500}])
    with pytest.raises(SyncFailed) as err:
        rig.sync()
    assert "could not be loaded" in str(err.value)
    assert rig.registered() == before
    summary = err.value.summary
    assert sorted(summary["inventory"]["failed"]) == [rig.arn(5), rig.arn(6)]
    converges_after(rig)


def test_consul_unreachable_raises_and_changes_nothing(rig: Rig) -> None:
    before = cold(rig)
    rig.lam.tag_resource(Resource=rig.arn(1), Tags={PREFIX + "enabled": "false"})
    rig.faults(consul=[{"match": "", "action": "reset"}])
    with pytest.raises(SyncFailed) as err:
        rig.sync()
    assert err.value.summary["verdict"] == "unreachable"
    assert rig.registered() == before
    converges_after(rig)


def test_aws_throttled_throughout_raises_and_changes_nothing(rig: Rig) -> None:
    before = cold(rig)
    rig.lam.tag_resource(Resource=rig.arn(1), Tags={PREFIX + "enabled": "false"})
    rig.faults(aws=[{"match": "", "action": "status", "status": 429}])
    with pytest.raises(SyncFailed):
        rig.sync()
    assert rig.registered() == before
    assert rig.counts()["consul"]["writes"] == 0
    converges_after(rig)


# -- through the Lambda Runtime API -------------------------------------------------


def test_failure_reaches_the_runtime_api_as_an_error(rig: Rig, workroot: Path) -> None:
    """Lambda records an invocation error when the handler raises; for EventBridge's
    asynchronous invocation that means a retry. Checked at the Runtime API itself."""
    runtime = sup.RuntimeAPI()
    reg = sup.Registrator("ours", runtime, rig.consul_proxy.url, rig.aws_proxy.url, workroot)
    try:
        reg.start()
        rig.faults(consul=[{"match": "^PUT /v1/config$", "action": "status", "status": 500}])
        result, _ = reg.invoke(sup.schedule_event(), timeout=300)
        assert not result.ok
        assert result.error is not None
        assert result.error["errorType"] == "SyncFailed"
        assert "operation(s) failed" in result.error["errorMessage"]
        rig.clear_faults()
        result, _ = reg.invoke(sup.schedule_event(), timeout=300)
        assert result.ok, result.error
        assert result.response["ok"] is True
        assert rig.check()["converged"]
    finally:
        reg.stop()
        runtime.close()


@pytest.mark.skipif(sup.upstream_binary() is None, reason="no upstream registrator binary")
def test_upstream_contrast_transient_getfunction_failure(rig: Rig, workroot: Path) -> None:
    """For RELIABILITY.md: the same kind of fault makes upstream deregister a live
    function (its ListFunctions drops a function whose GetFunction failed), while
    ours, with a failing listing page, removes nothing."""
    runtime = sup.RuntimeAPI()
    reg = sup.Registrator("upstream", runtime, rig.consul_proxy.url, rig.aws_proxy.url, workroot)
    try:
        reg.start()
        result, _ = reg.invoke(sup.schedule_event(), timeout=300)
        assert result.ok, result.error
        before = rig.registered()
        assert before == set(rig.desired())
        # One function's GetFunction fails on every attempt of the SDK (3).
        rig.faults(
            aws=[
                {
                    "match": "^GetFunction$",
                    "action": "status",
                    "status": 500,
                    "after": 4,
                    "times": 3,
                }
            ]
        )
        result, _ = reg.invoke(sup.schedule_event(), timeout=300)
        lost = before - rig.registered()
        assert result.ok  # upstream reports success...
        assert lost  # ...after deregistering a live function's services
        assert lost <= set(rig.desired())
    finally:
        reg.stop()
        runtime.close()
    # Ours, same servers, a listing page failing on every attempt: nothing removed.
    rig.clear_faults()
    rig.consul.clean()
    before = cold(rig)
    rig.faults(aws=[{"match": "^GetResources$", "action": "status", "status": 500}])
    with pytest.raises(SyncFailed):
        rig.sync()
    assert rig.registered() == before
