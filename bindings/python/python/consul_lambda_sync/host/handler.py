"""The Lambda entry point (``consul_lambda_sync.host.handler.handler``) and the loop that
carries the engine's steps (docs/engine.md), also used by the CLI. The engine decides
everything; this module tells it the time, prints its logs, sleeps when told and carries its
requests. The handler raises :class:`SyncFailed` when the result is not ok (EventBridge retries).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import queue
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import consul_lambda_sync as core

from .log import JsonLogger
from .transport import Aws, Carrier, Consul

if TYPE_CHECKING:
    from collections.abc import Mapping

    from consul_lambda_sync import Answer, BytesAnswer, Start, Step, SyncResult
    from consul_lambda_sync._types import AwsAccess, WireRequest

__all__ = [
    "SyncFailed",
    "aws_access",
    "handler",
    "print_metrics",
    "run",
    "start_env",
    "summary",
]

_AWS: dict[str, Aws] = {}  # reused across warm invocations (boto3 clients are expensive)
_SECRETS = ("CONSUL_HTTP_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # not for the engine


class SyncFailed(Exception):
    """The sync did not fully succeed; ``summary`` says what happened."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def start_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the engine: ``CONSUL_HTTP_TOKEN`` becomes ``"set"``."""
    out = {k: v for k, v in env.items() if k not in _SECRETS}
    return {**out, "CONSUL_HTTP_TOKEN": "set"} if env.get("CONSUL_HTTP_TOKEN") else out


def aws_access(env: Mapping[str, str]) -> Optional[AwsAccess]:
    """The credentials in the environment (Lambda's, or static ones) for the engine to sign
    AWS calls with (``Start.aws``); ``None``: AWS calls go through boto3, which finds them."""
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    access: AwsAccess = {
        "accessKeyId": key,
        "secretAccessKey": secret,
        "epochMs": int(time.time() * 1000),
    }
    if env.get("AWS_SESSION_TOKEN"):
        access["sessionToken"] = env["AWS_SESSION_TOKEN"]
    return access


def carrier(env: Mapping[str, str], aws: Aws, log: JsonLogger) -> Carrier:
    """The transport for one invocation (Consul settings from the core's configuration)."""
    try:
        config: Mapping[str, Any] = core.config_from_env(env)
    except core.ConsulLambdaSyncError:
        config = {}  # the engine ends with invalid_config before any Consul request
    return Carrier(Consul(config, env.get("CONSUL_HTTP_TOKEN") or None), aws, log)


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc's mallopt parameters


@functools.cache
def _tune_malloc() -> None:
    """glibc only (Lambda's runtimes), once per process: blocks of 1 MiB and more (Consul
    bodies, their copies) are mapped on their own and given back when freed, and the I/O
    threads share two arenas. glibc's default raises the mapping threshold after each such
    free and gives every thread an arena, so a steady sync of 10,000 functions kept about
    50 MiB of freed bodies in the process (BENCHMARKS.md, "Full sync vs upstream")."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc: its allocator is left as it is
        pass


def run(
    start: Start,
    transport: Carrier,
    log: JsonLogger,
    remaining_ms: Optional[Callable[[], Optional[float]]] = None,
) -> SyncResult:
    """Runs one engine to its result."""
    _tune_malloc()
    engine = core.Engine(start)
    pool: Optional[ThreadPoolExecutor] = None
    try:
        while True:
            left = remaining_ms() if remaining_ms is not None else None
            step = engine.next(time.monotonic() * 1000, left)
            log.log_records(step["logs"])
            if step.get("done") is not None:
                return step["done"]
            if "sleep" in step:
                time.sleep(step["sleep"] / 1000)
                continue
            timeout = step.get("timeoutMs", 10_000) / 1000
            if pool is None:  # the engine's concurrency is fixed for the invocation
                pool = ThreadPoolExecutor(
                    max(1, step.get("concurrency", 8)), thread_name_prefix="cls-io"
                )
            answers = _carry_all(pool, step, transport, timeout)
            engine.feed(answers, time.monotonic() * 1000)
    finally:
        if pool is not None:
            pool.shutdown()
        transport.close_all()


def _carry_all(
    pool: ThreadPoolExecutor, step: Step, transport: Carrier, timeout: float
) -> list[Union[Answer, BytesAnswer]]:
    """Carries a step's requests, at most ``concurrency`` at once: each worker takes the next
    request when it is free, so a slow request holds up only its own worker, and a step costs
    one task per worker rather than one per request."""
    reqs = step.get("send") or []
    todo: queue.SimpleQueue[WireRequest] = queue.SimpleQueue()
    for req in reqs:
        todo.put(req)
    answers: list[Union[Answer, BytesAnswer]] = []

    def work() -> None:
        while True:
            try:
                req = todo.get_nowait()
            except queue.Empty:
                return
            answers.append(transport.carry(req, timeout))  # list.append is atomic

    workers = min(len(reqs), max(1, step.get("concurrency", 8)))
    for task in [pool.submit(work) for _ in range(workers)]:
        task.result()
    return answers


def summary(result: SyncResult) -> dict[str, Any]:
    """The handler's return value: the result without plan, outcomes, basis and metrics."""
    return {k: v for k, v in result.items() if k not in ("plan", "outcomes", "basis", "metrics")}


def print_metrics(result: SyncResult, write: Callable[[str], Any]) -> None:
    """Prints the result's CloudWatch EMF document as one line, stamped with the wall clock."""
    metrics = dict(result["metrics"])
    metrics["_aws"] = {**metrics["_aws"], "Timestamp": int(time.time() * 1000)}
    write(json.dumps(metrics, separators=(",", ":")) + "\n")


def _aws(region: Optional[str]) -> Aws:
    if (region or "") not in _AWS:
        _AWS.clear()
        _AWS[region or ""] = Aws(region)
    return _AWS[region or ""]


def handler(
    event: Mapping[str, Any],
    context: Any = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    aws_factory: Optional[Callable[[Optional[str]], Aws]] = None,
    log: Optional[JsonLogger] = None,
    stdout: Optional[Callable[[str], Any]] = None,
    seed: Optional[int] = None,
) -> dict[str, Any]:
    """Handles one EventBridge event; prints the metrics line. The keywords are for tests."""
    environ = dict(os.environ if env is None else env)
    log = log or JsonLogger()
    arn = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    lam = len(arn) >= 7 and arn[2] == "lambda"
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
    region = region or (arn[3] if lam else "")
    start: Start = {"env": start_env(environ), "event": dict(event), "region": region}
    start["compact"] = True  # the handler returns no plan
    start["seed"] = random.getrandbits(62) if seed is None else seed
    if lam:
        start["accountId"] = arn[4]
    access = aws_access(environ) if aws_factory is None else None
    if access:
        start["aws"] = access
    transport = carrier(environ, (aws_factory or _aws)(region or None), log)
    result = run(start, transport, log, getattr(context, "get_remaining_time_in_millis", None))
    print_metrics(result, stdout or sys.stdout.write)
    out = summary(result)
    if not result["ok"]:
        raise SyncFailed(result["message"], out)
    return out
