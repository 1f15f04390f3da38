"""Plan a full sync from Python and print it, changing nothing.

    source "$(scripts/start-local.sh)"      # or point the variables at your own setup
    python examples/python/dry_run.py

Uses the same configuration variables as the Lambda function (CONSUL_HTTP_ADDR,
NODE_NAME, CONSUL_HTTP_TOKEN_PATH, ...) and the usual AWS ones.
"""

from __future__ import annotations

import os
import sys

import consul_lambda_sync as core
from consul_lambda_sync.host.handler import carrier, run, start_env
from consul_lambda_sync.host.log import JsonLogger
from consul_lambda_sync.host.transport import Aws


def main() -> int:
    env = dict(os.environ)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    log = JsonLogger("warn", stream=sys.stderr)
    # The engine decides what to read (and, without dryRun, what to write); the host
    # carries its requests.
    # `compact: False`: the result carries the plan (the engine's default is a compact result).
    start: core.Start = {
        "env": start_env(env),
        "region": region,
        "dryRun": True,
        "compact": False,
    }
    result = run(start, carrier(env, Aws(region), log), log)
    if not result["ok"]:
        print(result["message"], file=sys.stderr)
        return int(result["exitCode"])
    plan = result.get("plan")
    if plan is None:
        print("the result carries no plan", file=sys.stderr)
        return 1
    sys.stdout.write(core.format_plan(plan))
    counts = result["requests"]
    print(f"reads: Consul {counts['consul']['reads']}, AWS {counts['aws']['calls']}")
    return 1 if plan["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
