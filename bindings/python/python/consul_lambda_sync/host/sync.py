"""One reconcile pass: observe AWS and Consul, ask the core for a plan, execute it.

Used by the Lambda handler and by the CLI. The flow:

1. Observe Consul: the agent's datacenter; the datacenters to manage (``DATACENTER``
   or ``/v1/catalog/datacenters``); per datacenter (and partition, Enterprise) the
   registrator node's services and the service-defaults entries.
2. Observe Lambda: every tagged function (full sync, one ``GetResources`` call per
   100 functions) or the one function of an event (``GetFunction``).
3. Extension data (when ``CONSUL_EXTENSION_DATA_PREFIX`` is set): CA roots and the
   parameters under the prefix.
4. Plan. If the plan asks for confirmations (deletions caused only by absence from
   a listing), ``GetFunction`` each: found functions join the inventory, absent ones
   are confirmed, and the core plans again. With extension data, the leaf
   certificate of every wanted service is read and the core plans once more.
5. Execute (unless dry run); operations still waiting for a confirmation are skipped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import consul_lambda_sync as core

from .aws import AwsClients, AwsError
from .consul import ConsulClient, ConsulError
from .executor import DEFAULT_CONCURRENCY, Executor, ExtensionSource, OpResult, describe
from .log import JsonLogger, clip

if TYPE_CHECKING:
    from collections.abc import Mapping

AWS_WRITE_CALLS = frozenset({"PutParameter", "DeleteParameter"})
# Plan errors that make the whole invocation fail (a person must look), as
# opposed to per-function errors such as a bad tag value.
FATAL_PLAN_CODES = frozenset({"mass_deregistration_blocked"})


class SyncFailed(Exception):
    """The sync did not fully succeed; ``summary`` says what happened."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def load_secrets(
    config: Mapping[str, Any],
    aws: Optional[AwsClients],
    env: Mapping[str, str],
    log: JsonLogger,
) -> tuple[Optional[str], Optional[str]]:
    """The ACL token and CA certificate file, like upstream.

    ``CONSUL_HTTP_TOKEN_PATH`` / ``CONSUL_CACERT_PATH`` are Parameter Store names
    (read decrypted); otherwise ``CONSUL_HTTP_TOKEN`` / ``CONSUL_CACERT`` apply. The
    CA is written to a private temporary file whose path is returned.
    """
    token: Optional[str] = None
    ca_file: Optional[str] = None
    token_path = config.get("consulHttpTokenPath")
    if token_path:
        if aws is None:
            raise AwsError("CONSUL_HTTP_TOKEN_PATH is set but AWS is not available")
        token = _parameter(aws, "CONSUL_HTTP_TOKEN_PATH", str(token_path)).strip()
    elif env.get("CONSUL_HTTP_TOKEN"):
        token = env["CONSUL_HTTP_TOKEN"]
    log.add_secret(token)
    ca_path = config.get("consulCacertPath")
    if ca_path:
        if aws is None:
            raise AwsError("CONSUL_CACERT_PATH is set but AWS is not available")
        pem = _parameter(aws, "CONSUL_CACERT_PATH", str(ca_path))
        ca_file = write_ca_file(pem)
        log.debug("CA certificate read from Parameter Store", path=ca_path, file=ca_file)
    return token, ca_file


def _parameter(aws: AwsClients, variable: str, name: str) -> str:
    """A secret from Parameter Store, with an error that names the variable."""
    try:
        return aws.get_secure_parameter(name)
    except AwsError as e:
        raise type(e)(
            f"cannot read {variable}={name} from Parameter Store: {e.detail}",
            code=e.code,
            unreachable=e.unreachable,
            detail=e.detail,
        ) from e


def write_ca_file(pem: str) -> str:
    """Writes a CA bundle to a 0600 file in the temp dir (reused for equal content)."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"consul-lambda-sync-ca-{digest}.pem")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == pem:
                return path
    fd, tmp = tempfile.mkstemp(prefix="consul-lambda-sync-ca-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(pem)
    os.replace(tmp, path)
    return path


def strip_private_key(leaf: Mapping[str, Any]) -> dict[str, Any]:
    """The leaf without its private key: what the planner needs."""
    return {k: v for k, v in leaf.items() if k != "PrivateKeyPEM"}


@dataclass
class SyncResult:
    """What a sync (or dry run) did."""

    trigger: dict[str, Any]
    plan: dict[str, Any]
    dry_run: bool
    inventory: dict[str, Any]
    results: list[OpResult] = field(default_factory=list)
    consul_counts: dict[str, int] = field(default_factory=dict)
    aws_calls: dict[str, int] = field(default_factory=dict)
    duration_ms: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[OpResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def skipped(self) -> list[OpResult]:
        return [r for r in self.results if r.status == "skipped"]

    @property
    def fatal_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.plan.get("errors") or [] if e.get("code") in FATAL_PLAN_CODES]

    @property
    def ok(self) -> bool:
        return (
            not self.failed
            and not self.skipped
            and self.inventory.get("complete", True)
            and not self.inventory.get("failed")
            and not self.fatal_errors
        )

    @property
    def changes(self) -> int:
        return len(self.plan.get("operations") or [])

    def summary(self) -> dict[str, Any]:
        reads = sum(n for k, n in self.aws_calls.items() if k not in AWS_WRITE_CALLS)
        writes = sum(n for k, n in self.aws_calls.items() if k in AWS_WRITE_CALLS)
        return {
            "ok": self.ok,
            "dryRun": self.dry_run,
            "trigger": {k: v for k, v in self.trigger.items() if v is not None},
            "plan": self.plan.get("summary") or {},
            "operations": {
                "ok": sum(1 for r in self.results if r.status == "ok"),
                "failed": len(self.failed),
                "skipped": len(self.skipped),
            },
            "errors": [
                {k: e.get(k) for k in ("code", "function", "key", "value", "message") if e.get(k)}
                for e in self.plan.get("errors") or []
            ],
            "failures": [
                {
                    "op": r.op.get("kind"),
                    "service": (r.op.get("service") or {}).get("name"),
                    "request": describe(r.op),
                    "status": r.status,
                    "error": r.error,
                }
                for r in self.results
                if r.status != "ok"
            ],
            "inventory": {
                k: self.inventory.get(k)
                for k in ("complete", "functions", "pages", "error", "failed")
                if self.inventory.get(k) is not None
            },
            "requests": {
                "consul": {
                    "reads": self.consul_counts.get("GET", 0),
                    "writes": sum(n for m, n in self.consul_counts.items() if m != "GET"),
                },
                "aws": {"reads": reads, "writes": writes, "calls": dict(self.aws_calls)},
            },
            "notes": self.notes,
            "durationMs": self.duration_ms,
        }


class Syncer:
    """Observes, plans and executes for one configuration."""

    def __init__(
        self,
        config: dict[str, Any],
        aws: AwsClients,
        consul: ConsulClient,
        log: JsonLogger,
        *,
        account_id: str,
        region: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> None:
        self.config = config
        self.aws = aws
        self.consul = consul
        self.log = log
        self.account_id = account_id
        self.region = region
        self.concurrency = concurrency
        self.progress = progress
        self.extension = ExtensionSource(consul)

    # -- observation -------------------------------------------------------------

    def observe_consul(self) -> dict[str, Any]:
        """The Consul state for the planner. Raises :class:`ConsulError` on any failure."""
        cfg = self.config
        local_dc: str | None = None
        if cfg.get("datacenter"):
            # The agent's own datacenter only matters when DATACENTER is unset.
            dcs = [str(cfg["datacenter"])]
        else:
            local_dc = self.consul.local_datacenter()
            dcs = self.consul.datacenters() or ([local_dc] if local_dc else [])
        enterprise = bool(cfg.get("enterprise"))
        partitions: list[Optional[str]] = (
            list(cfg.get("partitions") or []) if enterprise else [None]
        )
        node = str(cfg.get("nodeName") or "lambdas")
        scopes: list[dict[str, Any]] = []
        for dc in dcs:
            for part in partitions:
                scopes.append(
                    {
                        "datacenter": dc,
                        "partition": part,
                        "nodeServices": self.consul.node_services(node, dc, part, enterprise),
                        "serviceDefaults": self.consul.service_defaults(dc, part, enterprise),
                    }
                )
        return {"localDatacenter": local_dc, "scopes": scopes}

    def observe_inventory(self, trigger: dict[str, Any]) -> dict[str, Any]:
        inv: dict[str, Any] = {
            "accountId": self.account_id,
            "region": self.region,
            "complete": True,
            "functions": [],
            "failed": [],
            "confirmedAbsent": [],
        }
        meta: dict[str, Any] = {}
        if trigger.get("kind") == "function":
            arn = str(trigger["arn"])
            try:
                fn = self.aws.get_function(arn)
            except AwsError as e:
                inv["failed"].append({"arn": arn, "error": clip(e, 300)})
                meta["error"] = str(e)
                meta["unreachable"] = e.unreachable
            else:
                if fn is None:
                    inv["confirmedAbsent"].append(arn)
                else:
                    inv["functions"].append(fn)
            meta["functions"] = len(inv["functions"])
            return {"input": inv, "meta": meta}
        listing = self.aws.list_functions()
        inv["functions"] = listing["functions"]
        inv["complete"] = listing["complete"]
        meta = {k: v for k, v in listing.items() if k != "functions"}
        meta["functions"] = len(listing["functions"])
        if not listing["complete"]:
            self.log.error(
                "the Lambda inventory is incomplete; no deregistration that could concern "
                "an unlisted function will run",
                error=listing.get("error"),
                pages=listing.get("pages"),
            )
        return {"input": inv, "meta": meta}

    def observe_extension(self) -> Optional[dict[str, Any]]:
        prefix = self.config.get("consulExtensionDataPrefix")
        if not prefix:
            return None
        try:
            roots = self.extension.ca_roots()
            params = self.aws.parameters_under(str(prefix))
        except (ConsulError, AwsError) as e:
            self.log.warn(
                "extension data could not be observed; none is written this time",
                error=clip(e),
            )
            return None
        return {"roots": roots, "leaves": [], "parameters": params}

    def _leaves(self, plan: dict[str, Any]) -> list[dict[str, Any]]:
        names = sorted(
            {
                str((row.get("service") or {}).get("name"))
                for row in plan.get("services") or []
                if row.get("change") != "delete"
            }
        )

        def fetch(name: str) -> Optional[dict[str, Any]]:
            try:
                return strip_private_key(self.extension.leaf(name))
            except ConsulError as e:
                self.log.warn("leaf certificate unavailable", service=name, error=clip(e))
                return None

        if not names:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(names))) as pool:
            return [leaf for leaf in pool.map(fetch, names) if leaf is not None]

    # -- planning ----------------------------------------------------------------

    def plan(self, trigger: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Observes and plans. Returns (plan, inventory metadata)."""
        # Fresh leaves and roots for every pass (a Syncer may run more than once).
        self.extension = ExtensionSource(self.consul)
        consul_state = self.observe_consul()
        observed = self.observe_inventory(trigger)
        inventory = observed["input"]
        extension = self.observe_extension()
        plan_input: dict[str, Any] = {
            "config": self.config,
            "trigger": trigger,
            "inventory": inventory,
            "consul": consul_state,
        }
        if extension is not None:
            plan_input["extensionData"] = extension
        plan = cast("dict[str, Any]", core.plan(plan_input))
        confirmations = plan.get("confirmations") or []
        if confirmations:
            for c in confirmations:
                arn = str(c["function"])
                try:
                    fn = self.aws.get_function(arn)
                except AwsError as e:
                    self.log.warn(
                        "could not confirm that a function is gone; its services are kept",
                        function=arn,
                        error=clip(e),
                    )
                    inventory["failed"].append({"arn": arn, "error": clip(e, 300)})
                    continue
                if fn is None:
                    inventory["confirmedAbsent"].append(arn)
                else:
                    self.log.info(
                        "function missing from the listing exists (listing lag or no tags)",
                        function=arn,
                    )
                    inventory["functions"].append(fn)
            plan = cast("dict[str, Any]", core.plan(plan_input))
        if extension is not None:
            extension["leaves"] = self._leaves(plan)
            plan = cast("dict[str, Any]", core.plan(plan_input))
        meta = observed["meta"]
        if inventory["failed"]:
            meta["failed"] = [f["arn"] for f in inventory["failed"]]
        return plan, meta

    # -- the whole pass ----------------------------------------------------------

    def run(self, trigger: dict[str, Any], *, dry_run: bool = False) -> SyncResult:
        start = time.monotonic()
        consul_before = dict(self.consul.counts)
        aws_before = dict(self.aws.calls)
        plan, meta = self.plan(trigger)
        self._log_plan(plan)
        result = SyncResult(trigger=trigger, plan=plan, dry_run=dry_run, inventory=meta)
        if not dry_run:
            executor = Executor(
                self.consul,
                self.aws,
                self.log,
                extension=self.extension,
                concurrency=self.concurrency,
                progress=self.progress,
            )
            result.results = executor.run(plan.get("operations") or [])
        result.consul_counts = {
            m: n - consul_before.get(m, 0) for m, n in self.consul.counts.items()
        }
        result.aws_calls = {
            k: n - aws_before.get(k, 0)
            for k, n in self.aws.calls.items()
            if n - aws_before.get(k, 0)
        }
        result.duration_ms = int((time.monotonic() - start) * 1000)
        return result

    def _log_plan(self, plan: dict[str, Any]) -> None:
        for e in plan.get("errors") or []:
            self.log.error(
                "plan error",
                code=e.get("code"),
                function=e.get("function"),
                key=e.get("key"),
                tagValue=e.get("value"),
                detail=e.get("message"),
                hint=e.get("hint"),
            )
        for w in plan.get("warnings") or []:
            self.log.warn(
                "plan warning",
                code=w.get("code"),
                function=w.get("function"),
                key=w.get("key"),
                tagValue=w.get("value"),
                detail=w.get("message"),
                hint=w.get("hint"),
            )
        for s in plan.get("skips") or []:
            self.log.debug("function skipped", function=s.get("function"), reason=s.get("reason"))
        self.log.info("plan", **(plan.get("summary") or {}))
