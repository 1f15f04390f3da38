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
import random
import sys
from typing import TYPE_CHECKING, Any, NoReturn, Optional, cast

import consul_lambda_sync as core
from consul_lambda_sync._errors import failure_error

from .demo import run_demo
from .handler import carrier, run, start_env, summary
from .log import JsonLogger
from .transport import Aws

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from consul_lambda_sync import Start, SyncResult
    from consul_lambda_sync._types import AwsCall

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


class Progress(JsonLogger):
    """Log lines on stderr, and a one-line progress bar counting the ``operation`` records.

    Unless ``--log-level`` is given, the records that repeat the outcome the CLI prints
    itself ("sync stopped", "sync finished") are left out.
    """

    def __init__(self, level: Optional[str], bar: bool, width: int = 30) -> None:
        super().__init__(level or "warn", stream=sys.stderr)
        self.quiet_outcome = level is None
        self.bar, self.width = bar, width
        self.total = self.done = 0
        self.shown = False

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if msg == "plan":
            self.total = int(fields.get("operations") or 0)
        elif msg == "operation":
            self.done += 1
            self.draw()
        if not (self.quiet_outcome and msg in ("sync stopped", "sync finished")):
            super().log(level, msg, **fields)

    def draw(self) -> None:
        if not self.bar or self.total <= 0:
            return
        filled = int(self.width * min(self.done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {min(self.done, self.total)}/{self.total} operations")
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


def _region(env: dict[str, str]) -> Optional[str]:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def _run(
    args: argparse.Namespace, env: dict[str, str], dry_run: bool, bar: bool = False
) -> SyncResult:
    """Runs the engine once (``plan``: a dry run) with the CLI's options."""
    engine_env = start_env(env)
    if args.log_level:
        engine_env["LOG_LEVEL"] = args.log_level
    start: Start = {"env": engine_env, "region": _region(env) or "", "seed": random.getrandbits(62)}
    if dry_run:
        start["dryRun"] = True
    if args.concurrency is not None:
        start["concurrency"] = args.concurrency
    if args.function:
        start["function"] = args.function
    elif args.event:
        try:
            with open(args.event, encoding="utf-8") as f:
                start["event"] = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read event file {args.event}: {e}") from e
    log = Progress(args.log_level, bar)
    try:
        return run(start, carrier(env, Aws(_region(env)), log), log)
    finally:
        log.close()


def _outcome(result: SyncResult) -> int:
    """Prints why a sync did not succeed (one line, or one per configuration problem)."""
    if result["ok"]:
        return EXIT_OK
    failure = result.get("failure")
    if result["verdict"] == "invalid_config" and failure:
        _print_failure(failure_error(failure))
    elif result["verdict"] == "unreachable":
        what = "Consul" if "Consul" in result["message"] else "AWS"
        _fail(f"cannot reach {what}: {result['message']}")
    elif result["verdict"] == "setup":
        hint = f" ({failure['hint']})" if failure and failure.get("hint") else ""
        _fail(f"AWS setup: {result['message']}{hint}")
    else:
        _fail(result["message"])
    return int(result["exitCode"])


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
        call = {"service": "lambda", "operation": "GetFunction", "input": {}}
        call["input"] = {"FunctionName": args.function}
        answer = Aws(_region(env)).call(0, cast("AwsCall", call))
        error = answer.get("error")
        if error and error.get("code") == "ResourceNotFoundException":
            _fail(f"function {args.function} does not exist in {_region(env)}")
            return EXIT_ERRORS
        if error:
            code = error.get("code")
            _fail(f"lambda GetFunction {args.function}: {code}: {error.get('message')}")
            return {"transport": EXIT_UNREACHABLE, "config": EXIT_USAGE}.get(str(code), 1)
        fn = cast("dict[str, Any]", core.parse_get_function(answer.get("ok") or {}))
    else:
        fn = _function_from_tags(args, env)
    report = evaluate(fn, config)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return EXIT_ERRORS if report.get("errors") else EXIT_OK


def cmd_plan(args: argparse.Namespace, env: dict[str, str]) -> int:
    result = _run(args, env, dry_run=True)
    plan: Mapping[str, Any] = result.get("plan") or {}
    if not result["ok"] and not plan:
        return _outcome(result)
    if args.json:
        print(json.dumps({"plan": plan, "summary": summary(result)}, indent=2))
    else:
        sys.stdout.write(core.format_plan(plan))
    if not result["ok"]:
        return _outcome(result)
    if plan.get("errors"):
        return EXIT_ERRORS
    if args.detailed_exitcode and plan.get("operations"):
        return EXIT_CHANGES
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, env: dict[str, str]) -> int:
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    result = _run(args, env, dry_run=False, bar=bool(show) and not args.json)
    plan: Mapping[str, Any] = result.get("plan") or {}
    if not result["ok"] and not plan:
        return _outcome(result)
    out = summary(result)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write(core.format_plan(plan))
        ops = out["operations"]
        print(f"Applied: {ops['ok']} ok, {ops['failed']} failed, {ops['skipped']} skipped.")
        for f in out["failures"]:
            print(f"  {f['status']}: {f['service']['name']}: {f['request']}: {f.get('error')}")
    if not result["ok"]:
        return _outcome(result)
    return EXIT_ERRORS if plan.get("errors") else EXIT_OK


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
        s.add_argument(
            "--concurrency", type=int, help="requests in flight (default: MAX_CONCURRENCY or 8)"
        )
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


if __name__ == "__main__":
    sys.exit(main())
