"""``consul-lambda-sync demo``: a guided tour against a LOCAL moto server and Consul.

It creates sample tagged functions in moto (never in a real account: it refuses
unless ``AWS_ENDPOINT_URL`` points at this machine), prints the plan, syncs,
shows the Consul catalog and service-defaults, then changes tags and lets the
Lambda handler process the CloudTrail events EventBridge would deliver.
``scripts/demo.sh`` starts the servers and runs this.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
import uuid
import zipfile
from typing import TYPE_CHECKING, Any, Optional, cast
from urllib.parse import urlparse

import boto3

import consul_lambda_sync as core

from .handler import carrier, handler, run, start_env, summary
from .log import JsonLogger
from .transport import Aws, Consul

if TYPE_CHECKING:
    from consul_lambda_sync import Start

PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"
ROLE = "consul-lambda-sync-demo"
EXTENSION = "builtin/aws/lambda"

# name, tags, what it shows
SAMPLES: list[tuple[str, dict[str, str], str]] = [
    (
        "demo-orders",
        {PREFIX + "enabled": "true", PREFIX + "aliases": "prod+staging"},
        "3 services: the function and one per alias",
    ),
    (
        "demo-payments",
        {
            PREFIX + "enabled": "true",
            PREFIX + "invocation-mode": "ASYNCHRONOUS",
            PREFIX + "payload-passthrough": "true",
        },
        "asynchronous invocation, payload passthrough",
    ),
    ("demo-reports", {PREFIX + "enabled": "false"}, "disabled: not registered"),
    ("demo-typo", {PREFIX + "enabled": "yes"}, "bad value: an error for it alone"),
    ("demo-untagged", {"team": "demo"}, "no registrator tags: ignored"),
]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _title(step: int, text: str) -> None:
    print(f"\n== {step}. {text} " + "=" * max(3, 74 - len(text)))


def _note(text: str) -> None:
    print(textwrap.fill(text, 80, initial_indent="   ", subsequent_indent="   "))


def _short(key: str) -> str:
    return key.replace(PREFIX, "") if key.startswith(PREFIX) else key


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buf.getvalue()


def cloudtrail_event(
    event_name: str,
    account: str,
    region: str,
    request: dict[str, Any],
    response: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """A Lambda CloudTrail event as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": account,
        "region": region,
        "detail": {
            "eventVersion": "1.08",
            "eventSource": "lambda.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "recipientAccountId": account,
            "requestParameters": request,
            "responseElements": response,
        },
    }


def _indent(text: str) -> str:
    return textwrap.indent(text.rstrip("\n"), "   ") + "\n"


def _get(consul: Consul, path: str) -> Any:
    answer = consul.call(0, {"method": "GET", "path": path}, 10.0)
    if answer.get("status") != 200:
        return None
    return json.loads(answer.get("body") or "null")


def _show_consul(consul: Consul, node: str, changed: frozenset[str] = frozenset()) -> None:
    """The registrator's node, its services and their service-defaults, as tables."""
    ns = _get(consul, f"/v1/catalog/node-services/{node}") or {}
    services = sorted(ns.get("Services") or [], key=lambda s: str(s.get("Service", "")))
    if not services:
        print(f"   node {node}: no services")
        return
    meta = (ns.get("Node") or {}).get("Meta") or {}
    meta_text = ", ".join(f"{k}={v}" for k, v in sorted(meta.items()))
    print(f"   node {node} ({meta_text})")
    entries = {
        str(e.get("Name")): e
        for e in _get(consul, "/v1/config/service-defaults") or []
        if any(x.get("Name") == EXTENSION for x in e.get("EnvoyExtensions") or [])
    }
    rows = [("SERVICE", "TAGS", "LAMBDA ARN (service-defaults)", "MODE", "PASSTHROUGH")]
    for s in services:
        name = str(s.get("Service"))
        ext: dict[str, Any] = next(
            (x for x in (entries.get(name) or {}).get("EnvoyExtensions") or [] if x),
            {},
        )
        args = ext.get("Arguments") or {}
        arn = str(args.get("arn", "-"))
        rows.append(
            (
                ("* " if name in changed else "  ") + name,
                ",".join(s.get("Tags") or []),
                "…:" + arn.split(":function:", 1)[-1] if ":function:" in arn else arn,
                str(args.get("invocationMode", "-")),
                str(args.get("payloadPassthrough", "-")).lower(),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if changed:
        present = {str(s.get("Service")) for s in services}
        removed = sorted(changed - present)
        gone = f"; removed: {', '.join(removed)}" if removed else ""
        print(f"   (* changed by the events{gone})")


def _create_samples(session: Any) -> dict[str, str]:
    """Creates (or re-tags) the sample functions; returns their ARNs by name."""
    iam = session.client("iam")
    try:
        role = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = session.client("lambda")
    code = _zip()
    arns: dict[str, str] = {}
    for name, tags, shows in SAMPLES:
        try:
            arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            old = lam.list_tags(Resource=arn).get("Tags") or {}
            if old:
                lam.untag_resource(Resource=arn, TagKeys=list(old))
            lam.tag_resource(Resource=arn, Tags=tags)
        except lam.exceptions.ResourceNotFoundException:
            arn = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": code},
                Tags=tags,
            )["FunctionArn"]
        _create_aliases(lam, name, tags)
        arns[name] = str(arn)
        text = "  ".join(f"{_short(k)}={v}" for k, v in tags.items())
        print(f"   {name:<15} {text}")
        print(f"   {'':<15} -> {shows}")
    print(f"   (tag keys shown without the prefix {PREFIX})")
    return arns


def _create_aliases(lam: Any, name: str, tags: dict[str, str]) -> None:
    """The aliases the tags name, as a real account has them: the registrator
    creates an alias service only for an alias ``ListAliases`` names."""
    for alias in filter(None, (a.strip() for a in tags.get(PREFIX + "aliases", "").split("+"))):
        with contextlib.suppress(lam.exceptions.ResourceConflictException):
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="$LATEST")


def _requests(summary: dict[str, Any]) -> str:
    consul = summary["requests"]["consul"]
    calls = summary["requests"]["aws"]["calls"]
    aws = ", ".join(f"{n} {op}" for op, n in sorted(calls.items())) or "none"
    return f"Consul: {consul['reads']} reads, {consul['writes']} writes; AWS: {aws}"


def metrics_line(doc: dict[str, Any]) -> str:
    """The handler's metrics (a CloudWatch EMF document) as one short human line."""
    return (
        f"metrics: {doc['ServicesCreated']} created, {doc['ServicesUpdated']} updated, "
        f"{doc['ServicesDeleted']} deleted, {doc['Duration']} ms "
        f"({doc['_aws']['CloudWatchMetrics'][0]['Namespace']}, {doc['Trigger']})"
    )


def _applied(s: dict[str, Any]) -> str:
    ops = s["operations"]
    return (
        f"   applied {ops['ok']} operations ({ops['failed']} failed) in {s['durationMs']} ms\n"
        f"   {_requests(s)}"
    )


def _events(
    session: Any, arns: dict[str, str], account: str, env: dict[str, str]
) -> frozenset[str]:
    """Tags two functions, hands the CloudTrail events to the handler; returns changed services."""
    changes = [
        ("demo-payments", {PREFIX + "invocation-mode": "synchronous"}),
        ("demo-orders", {PREFIX + "aliases": "prod"}),
    ]
    changed: set[str] = set()
    for fname, new_tags in changes:
        session.client("lambda").tag_resource(Resource=arns[fname], Tags=new_tags)
        text = " ".join(f"{_short(k)}={v}" for k, v in new_tags.items())
        print(f"\n   $ aws lambda tag-resource {fname} {text}")
        event = cloudtrail_event(
            "TagResource20170331v2",
            account,
            session.region_name,
            {"resource": arns[fname], "tags": new_tags},
        )
        print("   EventBridge -> handler: TagResource20170331v2 (only this function is read)")
        buf = io.StringIO()
        emitted: list[str] = []
        out = handler(
            event, None, env=env, log=JsonLogger("info", stream=buf), stdout=emitted.append
        )
        # The handler's JSON log lines, one per operation, grouped by service.
        by_service: dict[str, list[dict[str, Any]]] = {}
        for line in buf.getvalue().splitlines():
            rec = json.loads(line)
            if rec.get("msg") == "operation":
                by_service.setdefault(str(rec.get("service")), []).append(rec)
        for service, ops in by_service.items():
            changed.add(service)
            sign = {"create": "+", "update": "~", "delete": "-"}.get(str(ops[0].get("change")), " ")
            print(f"     {sign} {service}: {ops[0].get('change')}")
            for rec in ops:
                print(f"         {rec['request']}  {rec['status']}")
        plan = out["summary"]
        print(
            f"   handler returned ok={str(out['ok']).lower()}: {plan['create']} to create, "
            f"{plan['update']} to update, {plan['delete']} to delete; {_requests(out)}"
        )
        for line in emitted:
            print(f"   {metrics_line(json.loads(line))}")
    return frozenset(changed)


def run_demo(env: dict[str, str], keep_functions: bool = False) -> int:
    endpoint = env.get("AWS_ENDPOINT_URL", "")
    if urlparse(endpoint).hostname not in LOCAL_HOSTS:
        sys.stderr.write(
            "consul-lambda-sync: the demo creates and deletes Lambda functions, so it only runs "
            "against a local moto server: set AWS_ENDPOINT_URL=http://127.0.0.1:<port> "
            "(scripts/demo.sh does this)\n"
        )
        return 3
    config = cast("dict[str, Any]", core.config_from_env(env))
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(region_name=region)
    account = str(session.client("sts").get_caller_identity()["Account"])
    consul = Consul(config, env.get("CONSUL_HTTP_TOKEN") or None)
    node = str(config.get("nodeName") or "lambdas")
    aws = Aws(region, session)

    def sync(dry_run: bool = False) -> dict[str, Any]:
        # The demo prints its own account of what happens; JSON logs are for Lambda.
        quiet = JsonLogger("error", stream=io.StringIO())
        start: Start = {
            "env": start_env(env),
            "region": region,
            "accountId": account,
            "compact": False,  # the plan, to show
        }
        if dry_run:
            start["dryRun"] = True
        result = run(start, carrier(env, aws, quiet), quiet)
        out = summary(result)
        out["fullPlan"] = result.get("plan") or {}
        return out

    print("consul-lambda-sync demo")
    print(f"   Consul  {consul.base}")
    print(f"   AWS     {endpoint} (moto, region {region}, account {account})")

    _title(1, "Sample Lambda functions, created in moto")
    arns = _create_samples(session)

    _title(2, "Plan: what a full sync would change (consul-lambda-sync plan)")
    sys.stdout.write(_indent(core.format_plan(sync(dry_run=True)["fullPlan"])))
    _note(
        "Nothing has changed yet. demo-typo's error concerns demo-typo only: every other "
        "function is synced."
    )

    _title(3, "Sync (consul-lambda-sync sync; the Lambda does this every 10 minutes)")
    print(_applied(sync()))

    _title(4, "The Consul catalog now")
    _show_consul(consul, node)
    _note(
        "invocationMode is written in lower case: Consul's Lambda extension compares it "
        "with 'asynchronous' (upstream writes ASYNCHRONOUS, which Consul reads as synchronous)."
    )

    _title(5, "Steady state: a second full sync")
    again = sync()
    print(f"   {again['summary']['operations']} operations; {_requests(again)}")

    _title(6, "Tag changes, delivered as CloudTrail events to the Lambda handler")
    changed = _events(session, arns, account, env)

    _title(7, "The Consul catalog after the events")
    _show_consul(consul, node, changed)

    step = 8
    if not keep_functions:
        _title(step, "Cleaning up: the sample functions are deleted, a full sync follows")
        for name in arns:
            session.client("lambda").delete_function(FunctionName=name)
        done = sync()
        deleted = done["summary"].get("delete", 0)
        print(f"   deleted {deleted} services (each deletion confirmed by ListTags first)")
        print(_applied(done))
        _show_consul(consul, node)
    print("\ndemo finished")
    return 0
