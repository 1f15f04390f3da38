"""The construct's EventBridge rule, as each example app synthesizes it, against CloudTrail
samples (tests/deploy/cloudtrail-samples.json: every Lambda API call the registrator handles,
and calls it must ignore), matched by AWS's own pattern matcher, event-ruler (Maven Central
software.amazon.event.ruler:event-ruler; tests/deploy/ruler/Match.java). The core's event
classifier is held to the same samples: what the rule lets through is a function event for
the core, and a failed call (errorCode set) is ignored by both."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import consul_lambda_sync as core
import pytest

from conftest import APPS, HERE, template


def match(rules: dict[str, Any], samples: list[dict[str, Any]], tmp: Path) -> dict[str, list[str]]:
    (tmp / "rules.json").write_text(json.dumps(rules))
    (tmp / "events.json").write_text(json.dumps(samples))
    cp = Path(os.environ["DEPLOY_RULER_CP"]).read_text().strip()
    proc = subprocess.run(
        [
            "java",
            "-cp",
            cp,
            str(HERE / "ruler" / "Match.java"),
            str(tmp / "rules.json"),
            str(tmp / "events.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["name"] for x in lines] == [s["name"] for s in samples]
    return {x["name"]: x["matches"] for x in lines}


def test_the_samples_cover_every_event_name_the_rule_lists(samples: dict[str, Any]) -> None:
    rule = next(
        r["Properties"]["EventPattern"]
        for r in template("ts")["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    )
    handled = {s["event"]["detail"]["eventName"] for s in samples["samples"] if s["handled"]}
    assert handled == set(rule["detail"]["eventName"])
    assert any(
        not s["handled"] and "errorCode" in s["event"].get("detail", {}) for s in samples["samples"]
    )


@pytest.mark.parametrize("app", sorted(APPS))
def test_the_rule_matches_the_calls_the_registrator_handles_and_no_other(
    app: str, samples: dict[str, Any], tmp_path: Path
) -> None:
    rules = {
        logical: r["Properties"]["EventPattern"]
        for logical, r in template(app)["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    }
    assert len(rules) == 1, rules
    logical = next(iter(rules))
    assert rules[logical]["detail"]["errorCode"] == [{"exists": False}]
    got = match(rules, samples["samples"], tmp_path)
    wrong = [
        f"{s['name']}: matched {got[s['name']]}, handled={s['handled']}"
        for s in samples["samples"]
        if (got[s["name"]] == [logical]) != s["handled"]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_core_agrees_with_the_rule(samples: dict[str, Any]) -> None:
    for s in samples["samples"]:
        if s["event"].get("source") not in ("aws.lambda", "aws.events"):
            # Another service's event never reaches the function (the rule's source); the
            # core refuses it.
            with pytest.raises(core.ConsulLambdaSyncError):
                core.classify_event(s["event"])
            continue
        trigger = core.classify_event(s["event"])
        if s["handled"]:
            assert trigger["kind"] == "function", (s["name"], trigger)
            assert trigger["name"] == samples["function"], (s["name"], trigger)
        elif s.get("kind") == "fullSync":
            assert trigger["kind"] == "fullSync", (s["name"], trigger)
        else:
            # Failed calls and calls that change no registration: the core ignores them too.
            assert trigger["kind"] == "ignore", (s["name"], trigger)
