"""``consul-lambda-sync``: validate, doctor, plan (dry run), sync, prune, demo.

Configuration comes from the environment, exactly as for the Lambda function
(``CONSUL_HTTP_ADDR``, ``NODE_NAME``, ``CONSUL_HTTP_TOKEN_PATH``…) plus the usual
AWS variables (``AWS_REGION``, credentials, ``AWS_ENDPOINT_URL``).

Exit codes:
  0  success, no changes (or changes applied by ``sync``)
  1  errors (a function's tags, a failed operation, an incomplete inventory,
     a reviewed plan that is stale; doctor: a permission or parameter is missing)
  2  ``plan --detailed-exitcode``: changes are planned
  3  bad configuration or usage
  4  Consul or AWS unreachable
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
from typing import TYPE_CHECKING, Any, NoReturn, Optional, cast

import consul_lambda_sync as core
from consul_lambda_sync._errors import failure_error

from .log import JsonLogger

# The commands that reach AWS need boto3 (the ``host`` extra): without it, one line says so.
_MISSING_EXTRA: Optional[str] = None
try:
    from . import doctor_result
    from .demo import run_demo
    from .handler import aws_access, carrier, run, start_env, summary
    from .transport import Aws
except ImportError as e:  # pragma: no cover - tests/e2e/test_cli.py hides boto3
    if (e.name or "").split(".")[0] not in ("boto3", "botocore"):
        raise
    _MISSING_EXTRA = f"{e.name} is not installed: pip install 'consul-lambda-sync[host]'"

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
     a request that AWS or Consul refused, a reviewed plan that is stale (sync --plan),
     doctor: a Consul rule, an IAM action or a parameter is missing
  2  plan --detailed-exitcode: changes are planned
  3  bad configuration or usage
  4  Consul or AWS unreachable

With --json, a failure is one JSON object on stdout with "ok": false, "code" and "message".

reviewed plans:
  consul-lambda-sync plan --out plan.json   # review it
  consul-lambda-sync sync --plan plan.json  # applies the plan's operations that a fresh plan
                                            # also decides, or nothing: refuses if what it
                                            # touches changed since (exit 1, plan_stale), or if
                                            # the file holds anything else (plan_rejected)
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_CONTROL = {i: f"\\u{{{i:x}}}" for i in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def printable(text: str) -> str:
    """``text`` with its control characters escaped, as the core escapes what came
    from outside: a message can forge neither lines nor colours on the terminal."""
    return text.translate(_CONTROL)


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: {printable(message)}\n")


def _print_json(doc: Mapping[str, Any]) -> None:
    print(json.dumps(doc, indent=2))


def _failed(args: argparse.Namespace, code: str, message: str, exit_code: int, **extra: Any) -> int:
    """A failure: one line on stderr, or with ``--json`` one object on stdout."""
    if getattr(args, "json", False):
        _print_json({"ok": False, "code": code, "message": message, "exitCode": exit_code, **extra})
    else:
        _fail(message)
    return exit_code


def _config(env: dict[str, str]) -> dict[str, Any]:
    return cast("dict[str, Any]", core.config_from_env(env))


def _print_failure(err: Any, args: argparse.Namespace, exit_code: int) -> int:
    """One clear message for a core failure, one line per problem (or one JSON object)."""
    errors = getattr(err, "errors", None) or []
    if getattr(args, "json", False):
        extra = {"hint": getattr(err, "hint", None) or None, "errors": errors or None}
        fields = {k: v for k, v in extra.items() if v}
        return _failed(args, str(getattr(err, "code", "error")), _message(err), exit_code, **fields)
    if getattr(err, "code", "") == "invalid_config" and errors:
        n = len(errors)
        _fail(f"[invalid_config] invalid configuration ({n} problem{'s' if n > 1 else ''}):")
        for d in errors:
            key = d.get("key")
            value = d.get("value")
            where = (
                f"{key}={value!s}: " if key and value is not None else (f"{key}: " if key else "")
            )
            hint = f" ({d['hint']})" if d.get("hint") else ""
            code = f"[{d['code']}] " if d.get("code") else ""
            sys.stderr.write(printable(f"  - {code}{where}{d.get('message')}{hint}") + "\n")
        return exit_code
    _fail(str(err))  # "[code] message (hint)"
    return exit_code


def _message(err: Any) -> str:
    errors = getattr(err, "errors", None) or []
    if getattr(err, "code", "") == "invalid_config" and len(errors) > 1:
        return f"invalid configuration ({len(errors)} problems)"
    return str(getattr(err, "message", "") or err)


class Progress(JsonLogger):
    """Log lines on stderr, and a one-line progress bar counting the ``operation`` records.

    Unless a level is asked for (``--log-level`` or ``LOG_LEVEL``), the records that repeat
    what the CLI prints itself (the plan's errors and warnings, "sync stopped", "sync
    finished") are left out.
    """

    QUIET = frozenset(
        {"sync stopped", "sync finished", "plan error", "plan warning", "doctor finished"}
    )

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
        if not (self.quiet_outcome and msg in self.QUIET):
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


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {what} {path}: {e}") from e


def _reviewed(path: str) -> dict[str, Any]:
    """The document ``plan --out`` wrote."""
    doc = _read_json(path, "plan file")
    if not isinstance(doc, dict) or not {"plan", "basis"} <= set(doc):
        raise UsageError(f"{path} is not a plan written by `{PROG} plan --out`")
    return doc


def _run(
    args: argparse.Namespace,
    env: dict[str, str],
    dry_run: bool,
    bar: bool = False,
    prune: bool = False,
) -> SyncResult:
    """Runs the engine once (``plan``: a dry run) with the CLI's options."""
    engine_env = start_env(env)
    level = getattr(args, "log_level", None)
    if level:
        engine_env["LOG_LEVEL"] = level
    start: Start = {
        "env": engine_env,
        "region": _region(env) or "",
        "seed": random.getrandbits(62),
        "compact": False,  # the plan, the outcomes and the basis, to show and save
    }
    if dry_run:
        start["dryRun"] = True
    if args.concurrency is not None:
        start["concurrency"] = args.concurrency
    if prune:
        start["prune"] = True
    if getattr(args, "function", None):
        start["function"] = args.function
    elif getattr(args, "event", None):
        start["event"] = _read_json(args.event, "event file")
    elif getattr(args, "plan", None):
        start["reviewed"] = _reviewed(args.plan)
    access = aws_access(env)
    if access:
        start["aws"] = access
    log = Progress(level or env.get("LOG_LEVEL") or None, bar)
    try:
        return run(start, carrier(env, Aws(_region(env)), log), log)
    except core.ConsulLambdaSyncError as e:
        if "reviewed" in start and getattr(e, "code", "") == "invalid_input":
            raise UsageError(
                f"{args.plan} is not a plan written by `{PROG} plan --out`: {e}"
            ) from e
        raise
    finally:
        log.close()


def _outcome(result: SyncResult, args: argparse.Namespace, doc: Mapping[str, Any]) -> int:
    """Prints why a sync did not succeed (one line, or one per configuration problem);
    with ``--json``, ``doc`` (what the command printed, if anything) with the failure."""
    if result["ok"]:
        return EXIT_OK
    failure = result.get("failure")
    code = int(result["exitCode"])
    if getattr(args, "json", False):
        extra: dict[str, Any] = {**doc, "verdict": result["verdict"]}
        if failure and failure.get("hint"):
            extra["hint"] = failure["hint"]
        if failure and failure.get("errors"):
            extra["errors"] = failure["errors"]
        name = failure["code"] if failure else result["verdict"]
        return _failed(args, str(name), result["message"], code, **extra)
    # The engine's message says the failure's code and the way out (its hint).
    if result["verdict"] == "invalid_config" and failure:
        _print_failure(failure_error(failure), args, code)
    elif result["verdict"] == "unreachable":
        what = "Consul" if failure and failure["code"] == "consul_unreachable" else "AWS"
        _fail(f"cannot reach {what}: {result['message']}")
    elif result["verdict"] == "setup":
        _fail(f"AWS setup: {result['message']}")
    else:
        _fail(result["message"])
    return code


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
    # Names, keys and messages come from tags: escaped, they cannot act on the terminal.
    reason = f" ({report['reason']})" if report.get("reason") else ""
    print(printable(f"{report.get('name')}: {report.get('status')}{reason}"))
    for s in report.get("services") or []:
        print(printable(f"  service {s.get('name')} -> {s.get('arn')}"))
    for label in ("errors", "warnings"):
        for d in report.get(label) or []:
            key = d.get("key") or ""
            text = f"  {label[:-1]} [{d.get('code')}] {key}: {d.get('message')} ({d.get('hint')})"
            print(printable(text))


def cmd_validate(args: argparse.Namespace, env: dict[str, str]) -> int:
    config = _config(env)
    if not args.tags and not args.function:
        if args.json:
            _print_json({"ok": True, "config": config})
        else:
            _print_config(config)
        return EXIT_OK
    if args.function:
        call = {"service": "lambda", "operation": "GetFunction", "input": {}}
        call["input"] = {"FunctionName": args.function}
        answer = Aws(_region(env)).call(0, cast("AwsCall", call))
        error = answer.get("error")
        if error and error.get("code") == "ResourceNotFoundException":
            message = f"function {args.function} does not exist in {_region(env)}"
            return _failed(args, "function_not_found", message, EXIT_ERRORS)
        if error:
            code = str(error.get("code"))
            message = f"lambda GetFunction {args.function}: {code}: {error.get('message')}"
            exit_code = {"transport": EXIT_UNREACHABLE, "config": EXIT_USAGE}.get(code, 1)
            return _failed(args, code, message, exit_code)
        fn = cast("dict[str, Any]", core.parse_get_function(answer.get("ok") or {}))
    else:
        fn = _function_from_tags(args, env)
    report = evaluate(fn, config)
    if args.json:
        _print_json(report)
    else:
        _print_report(report)
    return EXIT_ERRORS if report.get("errors") else EXIT_OK


def _write_plan(path: str, result: SyncResult) -> None:
    """``plan --out``: the plan and its basis (never a secret: the engine sees none)."""
    doc = {"plan": result.get("plan"), "basis": result.get("basis")}
    if doc["basis"] is None:
        raise UsageError("the engine returned no plan basis: nothing written")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write the plan to {path}: {e}") from e


def cmd_plan(args: argparse.Namespace, env: dict[str, str], prune: bool = False) -> int:
    result = _run(args, env, dry_run=True, prune=prune)
    plan: Mapping[str, Any] = result.get("plan") or {}
    if not result["ok"] and not plan:
        return _outcome(result, args, {})
    out = getattr(args, "out", None)
    if out and result["ok"]:
        _write_plan(out, result)
    doc: dict[str, Any] = {"plan": plan, "summary": summary(result)}
    if not result["ok"]:
        return _outcome(result, args, doc)
    if args.json:
        _print_json({**doc, "out": out} if out else doc)
    else:
        sys.stdout.write(core.format_plan(plan))
        if out:
            print(
                f"\nSaved the plan to {out}. To apply exactly this plan: {PROG} sync --plan {out}"
            )
        elif prune and plan.get("operations"):
            print(f"\nDry run: nothing was removed. To remove all this: {PROG} prune --yes")
    if plan.get("errors"):
        return EXIT_ERRORS
    if getattr(args, "detailed_exitcode", False) and plan.get("operations"):
        return EXIT_CHANGES
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, env: dict[str, str], prune: bool = False) -> int:
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    result = _run(args, env, dry_run=False, bar=bool(show) and not args.json, prune=prune)
    plan: Mapping[str, Any] = result.get("plan") or {}
    failure = result.get("failure")
    refused = failure is not None and failure["code"] in ("plan_stale", "plan_rejected")
    if not result["ok"] and (not plan or refused):
        return _outcome(result, args, {})  # a reviewed plan refused: nothing was applied
    out = summary(result)
    if not result["ok"]:
        return _outcome(result, args, out)
    if args.json:
        _print_json(out)
    else:
        sys.stdout.write(core.format_plan(plan))
        ops = out["operations"]
        print(f"Applied: {ops['ok']} ok, {ops['failed']} failed, {ops['skipped']} skipped.")
        for f in out["failures"]:
            print(f"  {f['status']}: {f['service']['name']}: {f['request']}: {f.get('error')}")
    return EXIT_ERRORS if plan.get("errors") else EXIT_OK


def cmd_prune(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.yes:
        return cmd_sync(args, env, prune=True)
    return cmd_plan(args, env, prune=True)


MARKS = {"ok": "ok", "missing": "MISSING", "error": "ERROR", "skipped": "skipped"}


def cmd_doctor(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Checks Consul and AWS for what this configuration needs; writes nothing."""
    level = getattr(args, "log_level", None) or env.get("LOG_LEVEL") or None
    log = Progress(level, bar=False)
    engine_env = dict(env)
    if level:
        engine_env["LOG_LEVEL"] = level
    result = doctor_result(engine_env, None, log)
    report = result.get("doctor")
    if report is None:
        return _outcome(result, args, {})
    if args.json:
        head = {"ok": result["ok"], "verdict": result["verdict"], "exitCode": result["exitCode"]}
        _print_json({**head, "message": result["message"], **report})
        return int(result["exitCode"])
    for c in report["checks"]:
        print(f"{MARKS.get(c['status'], c['status']):8} {c['code']:26} {c['message']}")
        if c["status"] == "missing" and c.get("rule"):
            for line in str(c["rule"]).splitlines():
                print(f"{'':35} add: {line}")
        if c["status"] == "missing" and c.get("action"):
            print(f"{'':35} allow: {c['action']} on {c.get('resource') or '*'}")
    print(f"\n{result['message']}")
    if report["consulRules"]:
        print("Add to the registrator's Consul token policy:")
        for rule in report["consulRules"]:
            print(f"  {rule}")
    if report["iamActions"]:
        print("Allow in the registrator's IAM role: " + ", ".join(report["iamActions"]))
    return int(result["exitCode"])


def cmd_demo(args: argparse.Namespace, env: dict[str, str]) -> int:
    return run_demo(env, keep_functions=args.keep_functions)


LOG_LEVELS = ["trace", "debug", "info", "warn", "error"]


def _common(s: argparse.ArgumentParser, json_flag: bool = True) -> None:
    """Options every command takes, also after its name."""
    s.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,  # keeps a --log-level given before the command
        help="JSON log lines on stderr at this level (default: LOG_LEVEL, else warn)",
    )
    if json_flag:
        s.add_argument("--json", action="store_true", help="print JSON (a failure too)")


def _apply_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--concurrency", type=int, help="requests in flight (default: MAX_CONCURRENCY or 8)"
    )


def _progress_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    s.add_argument("--no-progress", dest="progress", action="store_false")


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
        choices=LOG_LEVELS,
        help="JSON log lines on stderr at this level (default: LOG_LEVEL, else warn)",
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
    _common(v)
    v.set_defaults(func=cmd_validate)

    doc = sub.add_parser(
        "doctor",
        help="check Consul and AWS for what this configuration needs (writes nothing)",
        description="Checks that Consul and AWS answer, that the Consul token has the rules "
        "this configuration needs (POST /v1/internal/acl/authorize, else read-only probes), "
        "that the IAM role may make the calls a sync makes, and that the Parameter Store "
        "paths exist. Prints ok or MISSING per check, with the rule or IAM action to add. "
        "Exit 0 when nothing is missing, 1 when something is, 3 bad configuration, "
        "4 unreachable.",
    )
    _common(doc)
    doc.set_defaults(func=cmd_doctor)

    for name, helptext, func in (
        ("plan", "show what a sync would change (dry run; changes nothing)", cmd_plan),
        ("sync", "reconcile Consul with the Lambda functions", cmd_sync),
    ):
        s = sub.add_parser(name, help=helptext)
        target = s.add_mutually_exclusive_group()
        target.add_argument("--function", help="only this function (name or ARN)")
        target.add_argument("--event", help="act on an EventBridge event read from this JSON file")
        _common(s)
        _apply_options(s)
        if name == "plan":
            s.add_argument(
                "--detailed-exitcode",
                action="store_true",
                help="exit 2 when changes are planned (like terraform plan)",
            )
            s.add_argument(
                "--out",
                metavar="FILE",
                help="save the plan and what it was computed from, for sync --plan",
            )
        else:
            target.add_argument(
                "--plan",
                metavar="FILE",
                help="apply exactly the plan saved by plan --out, or refuse (exit 1) if what "
                "it touches changed since",
            )
            _progress_options(s)
        s.set_defaults(func=func)

    r = sub.add_parser(
        "prune",
        help="remove everything the registrator manages (dry run unless --yes)",
        description="Plans the removal of every service, service-defaults entry and "
        "extension-data parameter the registrator manages (under a sync's ownership "
        "rules: nothing else); removes them with --yes.",
    )
    r.add_argument("--yes", action="store_true", help="remove them (default: only show the plan)")
    _common(r)
    _apply_options(r)
    _progress_options(r)
    r.set_defaults(func=cmd_prune)

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
    _common(d, json_flag=False)
    d.set_defaults(func=cmd_demo)
    return p


def _needs_aws(args: argparse.Namespace) -> bool:
    return args.command != "validate" or bool(args.function)


def main(argv: Optional[Sequence[str]] = None, env: Optional[dict[str, str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    environ = dict(os.environ if env is None else env)
    try:
        if getattr(args, "concurrency", None) is not None and args.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, not {args.concurrency}")
        if _MISSING_EXTRA and _needs_aws(args):
            return _failed(args, "missing_extra", _MISSING_EXTRA, EXIT_USAGE)
        return int(args.func(args, environ))
    except KeyboardInterrupt:
        return _failed(args, "interrupted", "interrupted", 130)
    except UsageError as e:
        return _failed(args, "usage", str(e), EXIT_USAGE)
    except core.ConsulLambdaSyncError as e:
        code = EXIT_USAGE if getattr(e, "code", "") in USAGE_CODES else EXIT_ERRORS
        return _print_failure(e, args, code)


if __name__ == "__main__":
    sys.exit(main())
