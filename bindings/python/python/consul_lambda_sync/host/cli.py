"""``consul-lambda-sync``: validate, plan (dry run), sync, demo.

Configuration comes from the environment, exactly as for the Lambda function
(``CONSUL_HTTP_ADDR``, ``NODE_NAME``, ``CONSUL_HTTP_TOKEN_PATH``…) plus the usual
AWS variables (``AWS_REGION``, credentials, ``AWS_ENDPOINT_URL``).

Exit codes:
  0  success, no changes (or changes applied by ``sync``)
  1  errors (a function's tags, a failed operation, an incomplete inventory)
  2  ``plan --detailed-exitcode``: changes are planned
  3  bad configuration or usage
  4  Consul or AWS unreachable
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn, Optional, cast

import consul_lambda_sync as core

from .aws import AwsClients, AwsConfigError, AwsError
from .consul import ConsulClient, ConsulError
from .demo import run_demo
from .log import JsonLogger
from .sync import Syncer, SyncResult, load_secrets

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_CHANGES = 2
EXIT_USAGE = 3
EXIT_UNREACHABLE = 4

PROG = "consul-lambda-sync"
USAGE_CODES = frozenset({"invalid_config", "unsupported_event", "invalid_event"})


EPILOG = """\
configuration:
  the Lambda function's environment variables (CONSUL_HTTP_ADDR, NODE_NAME, DATACENTER,
  CONSUL_HTTP_TOKEN_PATH, CONSUL_CACERT_PATH, CONSUL_EXTENSION_DATA_PREFIX, ...) and the
  usual AWS ones (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...)

exit codes:
  0  success (plan --detailed-exitcode: and nothing to change)
  1  errors: a function's tags, a failed operation, an incomplete Lambda listing,
     a request that AWS or Consul refused
  2  plan --detailed-exitcode: changes are planned
  3  bad configuration or usage
  4  Consul or AWS unreachable
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")


def _config(env: dict[str, str]) -> dict[str, Any]:
    return cast("dict[str, Any]", core.config_from_env(env))


def _print_failure(err: Any) -> None:
    """One clear message for a core failure, one line per problem."""
    errors = getattr(err, "errors", None) or []
    if getattr(err, "code", "") == "invalid_config" and errors:
        _fail(f"invalid configuration ({len(errors)} problem{'s' if len(errors) > 1 else ''}):")
        for d in errors:
            key = d.get("key")
            value = d.get("value")
            where = (
                f"{key}={value!s}: " if key and value is not None else (f"{key}: " if key else "")
            )
            hint = f" ({d['hint']})" if d.get("hint") else ""
            sys.stderr.write(f"  - {where}{d.get('message')}{hint}\n")
        return
    _fail(str(err))  # "[code] message (hint)"


class Progress:
    """A one-line progress bar on stderr (no extra dependency)."""

    def __init__(self, enabled: bool, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(self.width * done / total)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total} operations")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _trigger(args: argparse.Namespace, account: str, region: str) -> dict[str, Any]:
    if getattr(args, "event", None):
        try:
            with open(args.event, encoding="utf-8") as f:
                event = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read event file {args.event}: {e}") from e
        return cast("dict[str, Any]", core.classify_event(event))
    fn = getattr(args, "function", None)
    if fn:
        if fn.startswith("arn:"):
            arn = fn
            name = fn.split(":")[6] if len(fn.split(":")) > 6 else fn
        else:
            name = fn
            arn = f"arn:{_partition_of(region)}:lambda:{region}:{account}:function:{fn}"
        return {"kind": "function", "arn": arn, "name": name}
    return {"kind": "fullSync"}


def _region(env: dict[str, str]) -> Optional[str]:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def _setup(
    args: argparse.Namespace, env: dict[str, str], progress: Optional[Progress] = None
) -> tuple[Syncer, str, str]:
    """Config, clients and a Syncer."""
    config = _config(env)
    log = JsonLogger(args.log_level or "warn", stream=sys.stderr)
    aws = AwsClients(region=_region(env))
    account = aws.account_id()
    token, ca_file = load_secrets(config, aws, env, log)
    consul = ConsulClient.from_config(config, token=token, ca_file=ca_file)
    syncer = Syncer(
        config,
        aws,
        consul,
        log,
        account_id=account,
        region=aws.region,
        concurrency=getattr(args, "concurrency", 8),
        progress=progress,
    )
    return syncer, account, aws.region


def _inventory_unreachable(result: SyncResult) -> Optional[str]:
    inv = result.inventory
    if inv.get("unreachable") and not inv.get("pages"):
        return str(inv.get("error") or "AWS is unreachable")
    return None


def evaluate(fn: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The core's report on one function's tags (``evaluateFunction``)."""
    return cast("dict[str, Any]", core.evaluate_function(fn, config))


def _print_config(config: dict[str, Any]) -> None:
    print("configuration OK")
    for key in (
        "consulHttpAddr",
        "nodeName",
        "datacenter",
        "enterprise",
        "partitions",
        "consulHttpTokenPath",
        "consulCacertPath",
        "consulExtensionDataPrefix",
    ):
        if config.get(key):
            print(f"  {key}: {config[key]}")


def _function_from_tags(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    try:
        tags = json.loads(args.tags)
    except ValueError as e:
        raise UsageError(f"--tags must be a JSON object of tag keys to values: {e}") from e
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise UsageError("--tags must be a JSON object of tag keys to string values")
    region = _region(env) or "us-east-1"
    return {
        "arn": f"arn:{_partition_of(region)}:lambda:{region}:000000000000:function:{args.name}",
        "name": args.name,
        "tags": tags,
    }


def _print_report(report: dict[str, Any]) -> None:
    reason = f" ({report['reason']})" if report.get("reason") else ""
    print(f"{report.get('name')}: {report.get('status')}{reason}")
    for s in report.get("services") or []:
        print(f"  service {s.get('name')} -> {s.get('arn')}")
    for label in ("errors", "warnings"):
        for d in report.get(label) or []:
            key = d.get("key") or ""
            print(f"  {label[:-1]} [{d.get('code')}] {key}: {d.get('message')} ({d.get('hint')})")


def cmd_validate(args: argparse.Namespace, env: dict[str, str]) -> int:
    config = _config(env)
    if not args.tags and not args.function:
        if args.json:
            print(json.dumps({"ok": True, "config": config}, indent=2))
        else:
            _print_config(config)
        return EXIT_OK
    if args.function:
        aws = AwsClients(region=_region(env))
        fn = aws.get_function(args.function)
        if fn is None:
            _fail(f"function {args.function} does not exist in {aws.region}")
            return EXIT_ERRORS
    else:
        fn = _function_from_tags(args, env)
    report = evaluate(fn, config)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return EXIT_ERRORS if report.get("errors") else EXIT_OK


def cmd_plan(args: argparse.Namespace, env: dict[str, str]) -> int:
    syncer, account, region = _setup(args, env)
    trigger = _trigger(args, account, region)
    result = syncer.run(trigger, dry_run=True)
    unreachable = _inventory_unreachable(result)
    if unreachable:
        _fail(f"cannot reach AWS: {unreachable}")
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps({"plan": result.plan, "summary": result.summary()}, indent=2))
    else:
        sys.stdout.write(core.format_plan(result.plan))
    if result.plan.get("errors") or not result.inventory.get("complete", True):
        return EXIT_ERRORS
    if args.detailed_exitcode and result.changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, env: dict[str, str]) -> int:
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = Progress(bool(show) and not args.json)
    syncer, account, region = _setup(args, env, progress)
    trigger = _trigger(args, account, region)
    try:
        result = syncer.run(trigger)
    finally:
        progress.close()
    unreachable = _inventory_unreachable(result)
    if unreachable:
        _fail(f"cannot reach AWS: {unreachable}")
        return EXIT_UNREACHABLE
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        sys.stdout.write(core.format_plan(result.plan))
        ops = summary["operations"]
        print(f"Applied: {ops['ok']} ok, {ops['failed']} failed, {ops['skipped']} skipped.")
        for f in summary["failures"]:
            print(f"  {f['status']}: {f['service']}: {f['request']}: {f['error']}")
    if not result.ok or result.plan.get("errors"):
        return EXIT_ERRORS
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, env: dict[str, str]) -> int:
    return run_demo(env, keep_functions=args.keep_functions)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Keep tagged AWS Lambda functions registered in Consul.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {core.version()}")
    p.add_argument(
        "--log-level",
        choices=["trace", "debug", "info", "warn", "error"],
        help="JSON log lines on stderr at this level (default: warn)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser("validate", help="check the configuration, or a function's tags")
    v.add_argument(
        "--tags",
        help="tags as a JSON object, e.g. "
        '\'{"serverless.consul.hashicorp.com/v1alpha1/lambda/enabled": "true"}\'',
    )
    v.add_argument(
        "--name", default="my-function", help="function name for --tags (default: my-function)"
    )
    v.add_argument("--function", help="check the tags of this deployed function (name or ARN)")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_validate)

    for name, helptext, func in (
        ("plan", "show what a sync would change (dry run; changes nothing)", cmd_plan),
        ("sync", "reconcile Consul with the Lambda functions", cmd_sync),
    ):
        s = sub.add_parser(name, help=helptext)
        target = s.add_mutually_exclusive_group()
        target.add_argument("--function", help="only this function (name or ARN)")
        target.add_argument("--event", help="act on an EventBridge event read from this JSON file")
        s.add_argument("--json", action="store_true", help="print JSON")
        s.add_argument("--concurrency", type=int, default=8, help="parallel services (default 8)")
        if name == "plan":
            s.add_argument(
                "--detailed-exitcode",
                action="store_true",
                help="exit 2 when changes are planned (like terraform plan)",
            )
        else:
            s.add_argument(
                "--progress",
                dest="progress",
                action="store_true",
                default=None,
                help="show a progress bar (default: when stderr is a terminal)",
            )
            s.add_argument("--no-progress", dest="progress", action="store_false")
        s.set_defaults(func=func)

    d = sub.add_parser(
        "demo",
        help="create sample functions in a LOCAL moto server, sync them to a local Consul, "
        "show the result",
    )
    d.add_argument(
        "--keep-functions",
        action="store_true",
        help="do not delete the sample functions at the end",
    )
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None, env: Optional[dict[str, str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    environ = dict(os.environ if env is None else env)
    try:
        return int(args.func(args, environ))
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except UsageError as e:
        _fail(str(e))
        return EXIT_USAGE
    except core.ConsulLambdaSyncError as e:
        _print_failure(e)
        return EXIT_USAGE if getattr(e, "code", "") in USAGE_CODES else EXIT_ERRORS
    except Exception as e:
        return _map_host_error(e)


def _map_host_error(e: Exception) -> int:
    if isinstance(e, ConsulError):
        _fail(("cannot reach Consul: " if e.unreachable else "Consul error: ") + str(e))
        return EXIT_UNREACHABLE if e.unreachable else EXIT_ERRORS
    if isinstance(e, AwsConfigError):
        _fail(f"AWS setup: {e}")
        return EXIT_USAGE
    if isinstance(e, AwsError):
        _fail(("cannot reach AWS: " if e.unreachable else "AWS error: ") + str(e))
        return EXIT_UNREACHABLE if e.unreachable else EXIT_ERRORS
    raise e


if __name__ == "__main__":
    sys.exit(main())
