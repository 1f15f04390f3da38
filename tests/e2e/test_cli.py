"""The consul-lambda-sync CLI against the real servers: output and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Optional

from harness import ENABLED, PREFIX, REPO, Harness

if TYPE_CHECKING:
    from pathlib import Path


def test_plan_sync_and_exit_codes(h: Harness) -> None:
    h.enabled("cli-fn", aliases="blue")

    plan = h.cli("plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    assert "+ cli-fn" in plan.stdout
    # Each registration is a check-and-set transaction (contract §6.2), after its entry.
    assert "    PUT /v1/config?cas=0&dc=dc1\n    PUT /v1/txn?dc=dc1: register cli-fn (cas 0)\n" in (
        plan.stdout
    )
    assert "2 to create" in plan.stdout
    assert h.consul.services() == {}  # a dry run changes nothing

    as_json = h.cli("plan", "--json")
    assert as_json.returncode == 0
    doc = json.loads(as_json.stdout)
    assert doc["plan"]["summary"]["create"] == 2
    assert doc["summary"]["dryRun"] is True

    sync = h.cli("sync")
    assert sync.returncode == 0, sync.stderr
    assert "Applied: 4 ok, 0 failed, 0 skipped." in sync.stdout
    assert sorted(h.consul.services()) == ["cli-fn", "cli-fn-blue"]

    again = h.cli("plan", "--detailed-exitcode")
    assert again.returncode == 0
    assert "0 operations" in again.stdout


def test_errors_exit_1(h: Harness) -> None:
    h.create_function("typo", {ENABLED: "yes"})
    plan = h.cli("plan", "--detailed-exitcode")
    assert plan.returncode == 1
    assert "invalid_boolean" in plan.stdout or "must be true or false" in plan.stdout


def test_bad_configuration_exits_3_with_one_clear_message(h: Harness) -> None:
    env = h.env()
    env["PAGE_SIZE"] = "1000"
    proc = h.cli("plan", env=env)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert "PAGE_SIZE=1000" in proc.stderr
    assert "invalid configuration" in proc.stderr
    usage = h.cli("plan", "--no-such-flag")
    assert usage.returncode == 3


def test_unreachable_consul_exits_4(h: Harness) -> None:
    env = h.env()
    env["CONSUL_HTTP_ADDR"] = "http://127.0.0.1:9"
    proc = h.cli("plan", env=env)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("consul-lambda-sync: cannot reach Consul")


def test_unreachable_aws_exits_4(h: Harness) -> None:
    env = h.env()
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    proc = h.cli("sync", env=env)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert "cannot reach AWS" in proc.stderr


def test_validate(h: Harness) -> None:
    ok = h.cli("validate")
    assert ok.returncode == 0
    assert "configuration OK" in ok.stdout
    tags = json.dumps({ENABLED: "true", PREFIX + "invocation-mode": "fast"})
    bad = h.cli("validate", "--tags", tags)
    assert bad.returncode == 1
    assert "invalid_invocation_mode" in bad.stdout
    h.enabled("deployed", aliases="x+y")
    deployed = h.cli("validate", "--function", "deployed", "--json")
    assert deployed.returncode == 0, deployed.stderr
    report = json.loads(deployed.stdout)
    assert report["status"] == "managed"
    assert [s["name"] for s in report["services"]] == ["deployed", "deployed-x", "deployed-y"]
    missing = h.cli("validate", "--function", "nope")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_sync_one_event_from_a_file(h: Harness, tmp_path: Path) -> None:
    h.create_function("evented", {"team": "a"})
    h.tag("evented", {ENABLED: "true"})
    event = tmp_path / "event.json"
    event.write_text(json.dumps(h.tag_event("evented", {ENABLED: "true"})))
    proc = h.cli("sync", "--event", str(event), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["trigger"]["kind"] == "function"
    assert summary["summary"]["create"] == 1
    assert "evented" in h.consul.services()
    one = h.cli("plan", "--function", "evented", "--detailed-exitcode")
    assert one.returncode == 0, one.stdout + one.stderr


def test_failures_before_execution_delete_nothing(h: Harness) -> None:
    """Registered services survive every early failure, even when their functions are gone."""
    h.enabled("kept-a")
    h.enabled("kept-b")
    assert h.cli("sync").returncode == 0
    h.delete_function("kept-a")
    h.delete_function("kept-b")
    want = ["kept-a", "kept-b"]

    bad = h.env()
    bad["CONSUL_EXTENSION_DATA_PREFIX"] = "no-leading-slash"
    bad["NODE_NAME"] = "not a dns label"
    proc = h.cli("sync", env=bad)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        "consul-lambda-sync: [invalid_config] invalid configuration (2 problems):"
    )
    assert sorted(h.consul.services()) == want

    no_aws = h.env()
    no_aws["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    proc = h.cli("sync", env=no_aws)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(h.consul.services()) == want

    no_region = h.env()
    del no_region["AWS_REGION"], no_region["AWS_DEFAULT_REGION"]
    proc = h.cli("sync", env=no_region)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert "AWS_REGION" in proc.stderr
    assert sorted(h.consul.services()) == want

    missing_token = h.env()
    missing_token["CONSUL_HTTP_TOKEN_PATH"] = "/no/such/parameter"
    proc = h.cli("sync", env=missing_token)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "ParameterNotFound" in proc.stderr
    assert sorted(h.consul.services()) == want

    # With everything right, the deletions happen.
    assert h.cli("sync").returncode == 0
    assert h.consul.services() == {}


def test_progress_bar(h: Harness) -> None:
    for i in range(3):
        h.enabled(f"bar{i}")
    proc = h.cli("sync", "--progress")
    assert proc.returncode == 0, proc.stderr
    assert "6/6 operations" in proc.stderr
    quiet = h.cli("sync", "--progress")  # nothing to do: no bar
    assert "operations" not in quiet.stderr


def test_demo(h: Harness) -> None:
    proc = h.cli("demo", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "Plan: 4 to create, 0 to update, 0 to delete" in out
    assert "applied 8 operations (0 failed)" in out
    # Steady state: the datacenters, agent/self, node services, service-defaults and the
    # names other nodes use; one tagging page and no ListAliases (nothing is created).
    assert "   0 operations; Consul: 5 reads, 0 writes; AWS: 1 GetResources\n" in out
    assert "- demo-orders-staging" in out
    assert "removed: demo-orders-staging" in out
    assert "demo finished" in out
    # Each event's metrics as one short line, never the raw EMF document.
    line = r"^   metrics: \d+ created, \d+ updated, \d+ deleted, \d+ ms "
    line += r"\(ConsulLambdaSync, function\)$"
    assert len(re.findall(line, out, re.M)) == 2, out
    assert "_aws" not in out
    assert "CloudWatchMetrics" not in out
    # The demo removes what it created.
    assert h.consul.services() == {}

    remote = h.env()
    remote["AWS_ENDPOINT_URL"] = "https://lambda.us-east-1.amazonaws.com"
    refused = h.cli("demo", env=remote)
    assert refused.returncode == 3
    assert "only runs against a local moto server" in refused.stderr


def test_example_events_plan(h: Harness) -> None:
    """The sample events of examples/python/events are what EventBridge sends."""
    events = sorted((REPO / "examples" / "python" / "events").glob("*.json"))
    assert len(events) == 3
    for event in events:
        proc = h.cli("plan", "--event", str(event), "--json")
        assert proc.returncode == 0, f"{event.name}: {proc.stderr}"
        trigger = json.loads(proc.stdout)["summary"]["trigger"]
        assert trigger["kind"] in ("fullSync", "function"), event.name


def test_python_example_dry_run(h: Harness) -> None:
    h.enabled("example-fn")
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / "dry_run.py")],
        env=h.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "+ example-fn" in proc.stdout
    assert "Plan: 1 to create" in proc.stdout
    assert h.consul.services() == {}


def test_log_level_before_or_after_the_command_and_from_LOG_LEVEL(h: Harness) -> None:
    h.enabled("levels")
    quiet = h.cli("plan")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    for proc in (
        h.cli("--log-level", "info", "plan"),
        h.cli("plan", "--log-level", "info"),
        h.cli("plan", log_level="info"),
    ):
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stderr.splitlines()]
        assert "plan" in [r["msg"] for r in records]
        assert all(r["level"] in ("info", "warn", "error") for r in records)
    # After the command, it wins over the one before it.
    late = h.cli("--log-level", "info", "plan", "--log-level", "error")
    assert late.stderr == ""


def test_plan_warnings_are_printed_once(h: Harness) -> None:
    h.enabled("warned", colour="blue")  # an unknown tag under the prefix: a warning
    proc = h.cli("plan")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count("colour") == 1
    logged = h.cli("plan", log_level="warn")
    assert [json.loads(line)["msg"] for line in logged.stderr.splitlines()] == ["plan warning"]


def test_concurrency_below_one_is_a_usage_error(h: Harness) -> None:
    for value in ("0", "-3"):
        for command in ("plan", "sync", "prune"):
            proc = h.cli(command, "--concurrency", value)
            assert proc.returncode == 3, proc.stderr
            assert (
                proc.stderr
                == f"consul-lambda-sync: --concurrency must be at least 1, not {value}\n"
            )
    assert h.consul.services() == {}


def test_failures_under_json_are_one_json_object(h: Harness, tmp_path: Path) -> None:
    def failure(*args: str, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
        proc = h.cli(*args, "--json", env=env)
        assert proc.stderr == "", proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["ok"] is False
        assert isinstance(doc["code"], str)
        assert isinstance(doc["message"], str)
        assert doc["exitCode"] == proc.returncode
        return dict(doc)

    env = h.env()
    env["CONSUL_HTTP_ADDR"] = "http://127.0.0.1:9"
    unreachable = failure("plan", env=env)
    assert unreachable["exitCode"] == 4
    assert "Consul" in unreachable["message"]

    env = h.env()
    env["PAGE_SIZE"] = "1000"
    env["NODE_NAME"] = "not a dns label"
    config = failure("sync", env=env)
    assert (config["code"], config["exitCode"]) == ("invalid_config", 3)
    assert len(config["errors"]) == 2

    usage = failure("plan", "--concurrency", "0")
    assert (usage["code"], usage["exitCode"]) == ("usage", 3)
    missing = failure("validate", "--function", "nope")
    assert missing["exitCode"] == 1
    assert "does not exist" in missing["message"]
    absent = failure("sync", "--plan", str(tmp_path / "absent.json"))
    assert absent["exitCode"] == 3

    h.enabled("fn")
    env = h.env()
    env["CONSUL_HTTP_TOKEN_PATH"] = "/no/such/parameter"
    token = failure("sync", env=env)
    assert token["exitCode"] == 1
    assert "ParameterNotFound" in token["message"]


NO_BOTO3 = "import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None"


def test_without_the_host_extra_one_line_says_what_to_install(h: Harness) -> None:
    for command in (["plan"], ["sync"], ["prune"], ["validate", "--function", "x"], ["demo"]):
        proc = h.cli(*command, prelude=NO_BOTO3)
        assert proc.returncode == 3, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1
        assert "pip install 'consul-lambda-sync[host]'" in proc.stderr
    as_json = h.cli("plan", "--json", prelude=NO_BOTO3)
    assert json.loads(as_json.stdout)["code"] == "missing_extra"
    # What needs no AWS still works.
    assert h.cli("validate", prelude=NO_BOTO3).returncode == 0
    assert h.cli("--version", prelude=NO_BOTO3).returncode == 0
