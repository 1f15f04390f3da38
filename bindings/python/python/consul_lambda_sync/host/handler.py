"""The Lambda entry point: ``consul_lambda_sync.host.handler.handler``.

Configuration comes from the environment (upstream's names, see docs/contract.md §2); the
ACL token and CA certificate from Parameter Store (``CONSUL_HTTP_TOKEN_PATH``,
``CONSUL_CACERT_PATH``). Each invocation classifies its EventBridge event (a
schedule means a full sync, a Lambda CloudTrail call means one function), plans
and executes, writes JSON log lines (one per operation; never a token or key)
and returns a summary. It raises :class:`SyncFailed` when an operation failed,
the inventory was incomplete, or a safety stop tripped, so that the failure is
visible (errors metric) and EventBridge retries; a bad tag on one function is
logged and does not fail the invocation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, cast

import consul_lambda_sync as core

from .aws import AwsClients, AwsError
from .consul import ConsulClient, ConsulError
from .executor import DEFAULT_CONCURRENCY
from .log import JsonLogger, clip
from .sync import Syncer, SyncFailed, load_secrets

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SyncFailed", "handler"]

# Reused across warm invocations (boto3 clients are expensive to build).
_AWS: dict[str, AwsClients] = {}


def _aws_clients(region: str) -> AwsClients:
    clients = _AWS.get(region)
    if clients is None:
        clients = AwsClients(region=region)
        _AWS.clear()
        _AWS[region] = clients
    return clients


def _account_and_region(
    context: Any, env: Mapping[str, str], aws_factory: Any
) -> tuple[str, str, AwsClients]:
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    account = ""
    if len(parts) >= 7 and parts[2] == "lambda":
        region = region or parts[3]
        account = parts[4]
    aws: AwsClients = aws_factory(region or None)
    if not account:
        account = aws.account_id()
    return account, aws.region, aws


def _flag(value: Optional[str]) -> bool:
    return str(value or "").strip().lower() in {"1", "t", "true", "yes"}


def _number(value: Optional[str], default: float) -> float:
    try:
        n = float(str(value))
    except ValueError:
        return default
    return n if n > 0 else default


def handler(
    event: Mapping[str, Any],
    context: Any = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    aws_factory: Any = None,
    log: Optional[JsonLogger] = None,
) -> dict[str, Any]:
    """Handles one EventBridge event. ``env``/``aws_factory``/``log`` are for tests.

    Besides upstream's variables, like the Node host: ``DRY_RUN=true`` plans and
    logs the plan without changing anything, ``MAX_CONCURRENCY`` bounds the
    services written in parallel (default 8), ``CONSUL_TIMEOUT_MS`` is the timeout
    of one Consul request (default 10000).
    """
    environ = dict(os.environ if env is None else env)
    log = log or JsonLogger(environ.get("LOG_LEVEL", "info"))
    try:
        config = cast("dict[str, Any]", core.config_from_env(environ))
    except core.ConsulLambdaSyncError as e:
        log.error(
            "invalid configuration",
            code=e.code,
            detail=e.message,
            errors=[
                {k: d.get(k) for k in ("code", "key", "message", "hint") if d.get(k)}
                for d in getattr(e, "errors", None) or []
            ],
        )
        raise
    log.set_level(str(config.get("logLevel") or "info"))
    try:
        trigger = cast("dict[str, Any]", core.classify_event(dict(event)))
    except core.ConsulLambdaSyncError as e:
        log.error("unsupported event", code=e.code, detail=e.message, hint=e.hint)
        raise
    if trigger.get("kind") == "ignore":
        log.info("event ignored", reason=trigger.get("reason"), eventName=trigger.get("eventName"))
        return {"ok": True, "trigger": trigger}
    dry_run = _flag(environ.get("DRY_RUN"))
    log.info(
        "sync start",
        trigger=trigger.get("kind"),
        function=trigger.get("arn"),
        eventName=trigger.get("eventName"),
        dryRun=dry_run or None,
    )
    try:
        account, region, aws = _account_and_region(context, environ, aws_factory or _aws_clients)
        token, ca_file = load_secrets(config, aws, environ, log)
        consul = ConsulClient.from_config(
            config,
            token=token,
            ca_file=ca_file,
            timeout=_number(environ.get("CONSUL_TIMEOUT_MS"), 10_000) / 1000,
        )
        syncer = Syncer(
            config,
            aws,
            consul,
            log,
            account_id=account,
            region=region,
            concurrency=int(_number(environ.get("MAX_CONCURRENCY"), DEFAULT_CONCURRENCY)),
        )
        result = syncer.run(trigger, dry_run=dry_run)
    except (AwsError, ConsulError) as e:
        # One clear line (the exception still propagates so that Lambda records an
        # error and EventBridge retries); nothing was changed before observation ended.
        log.error("sync failed", error=clip(e), unreachable=e.unreachable)
        raise
    summary = result.summary()
    if dry_run:
        log.info("dry run: nothing changed", plan=core.format_plan(result.plan))
    log.info("sync done", **summary)
    if not result.ok:
        raise SyncFailed(
            "sync incomplete: "
            + ", ".join(
                part
                for part in (
                    f"{len(result.failed)} operation(s) failed" if result.failed else "",
                    f"{len(result.skipped)} operation(s) skipped" if result.skipped else "",
                    "the Lambda inventory was incomplete"
                    if not result.inventory.get("complete", True)
                    else "",
                    "functions could not be loaded" if result.inventory.get("failed") else "",
                    "; ".join(e.get("message", "") for e in result.fatal_errors),
                )
                if part
            ),
            summary,
        )
    return summary
