"""Runs a plan's operations with bounded concurrency.

A service's operations run in plan order, one after the other (config entry
before catalog register; catalog deregister before config delete); different
services run in parallel. When an operation of a service fails, that service's
later operations are skipped (the next sync retries them). An operation that
still carries ``confirmAbsent`` is never run: the host confirms absences and
re-plans before executing, so such an operation is one whose function could not
be confirmed gone.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, cast

import consul_lambda_sync as core

from .aws import AwsClients, AwsError
from .consul import ConsulClient, ConsulError
from .log import JsonLogger, clip

DEFAULT_CONCURRENCY = 8

ServiceId = tuple[Optional[str], Optional[str], Optional[str], str]


def service_id(service: dict[str, Any]) -> ServiceId:
    return (
        service.get("datacenter"),
        service.get("partition"),
        service.get("namespace"),
        str(service.get("name", "")),
    )


def describe(op: dict[str, Any]) -> str:
    """``PUT /v1/config`` or ``ssm PutParameter /name``: safe to log."""
    req = op.get("request") or {}
    if req.get("target") == "ssm":
        return f"ssm {req.get('action')} {req.get('name')}"
    return f"{req.get('method')} {req.get('path')}"


@dataclass
class OpResult:
    op: dict[str, Any]
    status: str  # ok | failed | skipped
    error: Optional[str] = None
    ms: int = 0


@dataclass
class ExtensionSource:
    """Leaves and roots for extension data writes, fetched once and reused."""

    consul: ConsulClient
    leaves: dict[str, dict[str, Any]] = field(default_factory=dict)
    roots: Optional[dict[str, Any]] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def leaf(self, name: str) -> dict[str, Any]:
        with self._lock:
            cached = self.leaves.get(name)
        if cached is not None:
            return cached
        fresh = self.consul.leaf(name)
        with self._lock:
            self.leaves[name] = fresh
        return fresh

    def ca_roots(self) -> dict[str, Any]:
        with self._lock:
            if self.roots is not None:
                return self.roots
        fresh = self.consul.roots()
        with self._lock:
            self.roots = fresh
        return fresh


class Executor:
    """Executes plan operations against Consul and Parameter Store."""

    def __init__(
        self,
        consul: ConsulClient,
        aws: Optional[AwsClients],
        log: JsonLogger,
        *,
        extension: Optional[ExtensionSource] = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> None:
        self.consul = consul
        self.aws = aws
        self.log = log
        self.extension = extension or ExtensionSource(consul)
        self.concurrency = max(1, int(concurrency))
        self.progress = progress
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()

    def run(self, operations: list[dict[str, Any]]) -> list[OpResult]:
        groups: dict[ServiceId, list[int]] = {}
        for i, op in enumerate(operations):
            groups.setdefault(service_id(op.get("service") or {}), []).append(i)
        results: list[Optional[OpResult]] = [None] * len(operations)
        self._done, self._total = 0, len(operations)
        if not operations:
            return []
        workers = min(self.concurrency, len(groups))
        if workers == 1:
            for idx in groups.values():
                self._run_group(operations, idx, results)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cls-op") as pool:
                futures = [
                    pool.submit(self._run_group, operations, idx, results)
                    for idx in groups.values()
                ]
                for f in futures:
                    f.result()
        return [r for r in results if r is not None]

    def _tick(self) -> None:
        with self._lock:
            self._done += 1
            done, total = self._done, self._total
        if self.progress:
            self.progress(done, total)

    def _run_group(
        self, operations: list[dict[str, Any]], idx: list[int], results: list[Optional[OpResult]]
    ) -> None:
        failed: Optional[str] = None
        for i in idx:
            op = operations[i]
            if failed is not None:
                res = OpResult(op, "skipped", f"an earlier step of this service failed: {failed}")
            elif op.get("confirmAbsent"):
                res = OpResult(
                    op,
                    "skipped",
                    f"waiting for GetFunction to confirm {op['confirmAbsent']} is gone",
                )
            else:
                res = self._run_one(op)
                if res.status == "failed":
                    failed = describe(op)
            results[i] = res
            self._log(res)
            self._tick()

    def _run_one(self, op: dict[str, Any]) -> OpResult:
        start = time.monotonic()
        req = op.get("request") or {}
        try:
            if req.get("target") == "ssm":
                self._ssm(op, req)
            else:
                self.consul.send(req)
        except (ConsulError, AwsError, core.ConsulLambdaSyncError) as e:
            return OpResult(op, "failed", clip(e), int((time.monotonic() - start) * 1000))
        except Exception as e:
            return OpResult(
                op,
                "failed",
                f"{type(e).__name__}: {clip(e)}",
                int((time.monotonic() - start) * 1000),
            )
        return OpResult(op, "ok", None, int((time.monotonic() - start) * 1000))

    def _ssm(self, op: dict[str, Any], req: dict[str, Any]) -> None:
        if self.aws is None:
            raise AwsError("no AWS clients to run a Parameter Store operation")
        action = req.get("action")
        name = str(req.get("name"))
        if action == "DeleteParameter":
            self.aws.delete_parameter(name)
        elif action == "PutParameter":
            service = str((op.get("service") or {}).get("name", ""))
            leaf = self.extension.leaf(service)
            roots = self.extension.ca_roots()
            # Holds the private key: sent, never logged.
            call = core.extension_data_parameter(
                {"name": name, "tier": req.get("tier"), "leaf": leaf, "roots": roots}
            )
            self.aws.put_parameter(cast("dict[str, Any]", call))
        else:
            raise AwsError(f"unknown Parameter Store action {action!r}")

    def _log(self, res: OpResult) -> None:
        op = res.op
        svc = op.get("service") or {}
        fields: dict[str, Any] = {
            "op": op.get("kind"),
            "request": describe(op),
            "service": svc.get("name"),
            "datacenter": svc.get("datacenter"),
            "partition": svc.get("partition"),
            "namespace": svc.get("namespace"),
            "change": op.get("change"),
            "function": op.get("function"),
            "reason": op.get("reason"),
            "leafSerial": op.get("leafSerial"),
            "status": res.status,
            "error": res.error,
            "ms": res.ms,
        }
        level = {"ok": "info", "failed": "error", "skipped": "warn"}[res.status]
        self.log.log(level, "operation", **fields)
