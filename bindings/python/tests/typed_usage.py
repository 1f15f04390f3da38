"""Typed use of the package, checked by `mypy --strict` (scripts/test-python.sh).

It also runs (tests/test_typed_usage.py), so what it claims holds at run time too.
"""

from __future__ import annotations

from typing import Optional

import consul_lambda_sync as cls
from consul_lambda_sync import (
    Config,
    Diagnostic,
    ErrorCode,
    FunctionReport,
    Plan,
    PlanInput,
    PlanSummary,
    TagOptions,
    TagReport,
    Trigger,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"


def tags_for(aliases: list[str]) -> dict[str, str]:
    options: TagOptions = {"enabled": True, "aliases": aliases, "invocationMode": "SYNCHRONOUS"}
    return cls.tags_from_options(options)


def problems(report: TagReport) -> list[ErrorCode]:
    diagnostics: list[Diagnostic] = report["errors"] + report["warnings"]
    return [d["code"] for d in diagnostics]


def service_names(report: FunctionReport) -> list[str]:
    return [s["name"] for s in report["services"]]


def what_to_do(event: object) -> str:
    trigger: Trigger = cls.classify_event(event)
    if trigger["kind"] == "function":
        return f"sync {trigger['name']}"
    if trigger["kind"] == "ignore":
        return f"ignore: {trigger['reason']}"
    return "full sync"


PLAN_INPUT: PlanInput = {
    "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": []}
}


def summary_line(plan: Plan) -> str:
    s: PlanSummary = plan["summary"]
    entries = [op["entry"]["arn"] for op in plan["operations"] if op["kind"] == "upsertConfigEntry"]
    requests = cls.plan_requests(PLAN_INPUT)
    consul = [r for r in requests if "consul" in (r.get("request") or {})]
    return (
        f"{s['create']} create, {s['delete']} delete, {len(entries)} entries, "
        f"{len(consul)} Consul requests"
    )


def node_name(env: Optional[dict[str, str]] = None) -> str:
    config: Config = cls.config_from_env(env)
    return config["nodeName"]


def failure_code(env: dict[str, str]) -> Optional[ErrorCode]:
    try:
        cls.config_from_env(env)
    except cls.ConfigError as e:
        first: Diagnostic = e.errors[0]
        assert first["message"]
        return e.code
    return None


def main() -> None:
    tags = tags_for(["live"])
    assert problems(cls.parse_tags(tags)) == []
    report = cls.evaluate_function({"arn": ARN, "tags": tags}, {"nodeName": "lambdas"})
    assert service_names(report) == ["orders", "orders-live"]
    assert what_to_do({"source": "aws.events"}) == "full sync"
    PLAN_INPUT["inventory"]["functions"] = [{"arn": ARN, "tags": tags}]
    plan = cls.plan(PLAN_INPUT)
    assert summary_line(plan) == "2 create, 0 delete, 2 entries, 4 Consul requests"
    assert cls.format_plan(plan).strip()
    assert node_name({}) == "lambdas"
    assert failure_code({"PAGE_SIZE": "x"}) == "invalid_config"
    codes: list[ErrorCode] = [c["code"] for c in cls.error_codes()]
    assert "invalid_config" in codes
    version: str = cls.version()
    assert version == cls.__version__


if __name__ == "__main__":
    main()
