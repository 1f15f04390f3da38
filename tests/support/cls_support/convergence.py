"""Consul, read directly, against what the functions' tags ask for."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .consul import ConsulClient


def lambda_args(entry: dict[str, Any]) -> Optional[dict[str, Any]]:
    for ext in entry.get("EnvoyExtensions") or []:
        if ext.get("Name") == "builtin/aws/lambda":
            return {str(k).lower(): v for k, v in (ext.get("Arguments") or {}).items()}
    return None


def compare(consul: ConsulClient, desired: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Consul (read directly) against what the tags ask for. Invocation mode is
    compared case-insensitively (upstream writes it upper-case, we lower-case)."""
    services = consul.managed_services()
    entries = consul.entries()
    missing = sorted(n for n in desired if n not in services or n not in entries)
    extra = sorted(n for n in services if n not in desired)
    stale_entries = sorted(
        n for n, e in entries.items() if n not in desired and lambda_args(e) is not None
    )
    drifted = []
    for name, want in desired.items():
        e = entries.get(name)
        args = lambda_args(e) if e else None
        if args is None:
            continue
        if (
            args.get("arn") != want["arn"]
            or bool(args.get("payloadpassthrough")) != want["payloadPassthrough"]
            or str(args.get("invocationmode", "")).lower() != want["invocationMode"]
        ):
            drifted.append(name)
    return {
        "converged": not (missing or extra or drifted or stale_entries),
        "desired": len(desired),
        "missing": len(missing),
        "extra": len(extra),
        "stale_entries": len(stale_entries),
        "drifted": len(drifted),
        "examples": (missing[:3] + extra[:3] + drifted[:3] + stale_entries[:3]),
    }


def minimal_writes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> int:
    """Fewest Consul writes that take ``before`` to ``after``: a new service is a
    config entry + a registration, a gone one a deregistration + a config delete,
    a changed one a config entry write."""
    writes = 0
    for name in before.keys() | after.keys():
        if name not in before or name not in after:
            writes += 2
        elif before[name] != after[name]:
            writes += 1
    return writes


# Consul's default limit of operations in one /v1/txn request.
TXN_MAX_OPS = 128


def minimal_txn_writes(
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    *,
    registered: Optional[Iterable[str]] = None,
    node: Optional[bool] = None,
) -> int:
    """Fewest Consul writes when catalog changes go through ``/v1/txn`` (ours): one
    config entry write (or delete) per new, changed or gone service, plus
    ceil(catalog operations / 128) transactions; the first transaction of a cold sync
    also creates the node (one more operation).

    ``before`` is the config entries' Lambda arguments by service (the shape of
    ``after``). By default a service in ``before`` is also registered and the node
    exists when ``before`` is not empty; a state left half-way by an interrupted sync
    (an entry written, its registration not) passes what is registered and whether
    the node exists (:func:`observed`)."""
    catalog_before = set(before) if registered is None else set(registered)
    has_node = bool(catalog_before) if node is None else node
    config = sum(1 for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    catalog = len(catalog_before ^ set(after))
    if catalog and not has_node:
        catalog += 1  # the node
    return config + math.ceil(catalog / TXN_MAX_OPS)


def observed(consul: ConsulClient) -> dict[str, Any]:
    """What the registrator left in Consul, read directly: ``entries`` (the Lambda
    arguments of each service-defaults entry, in the shape of ``desired()``),
    ``registered`` (the managed services on its node) and ``node`` (whether the node
    exists). ``minimal_txn_writes(o["entries"], desired, registered=o["registered"],
    node=o["node"])`` is then what one sync must write."""
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in consul.entries().items():
        args = lambda_args(entry)
        if args is None:
            continue
        entries[name] = {
            "arn": args.get("arn"),
            "payloadPassthrough": bool(args.get("payloadpassthrough")),
            "invocationMode": str(args.get("invocationmode", "")).lower(),
        }
    return {
        "entries": entries,
        "registered": set(consul.managed_services()),
        "node": consul.node() is not None,
    }
