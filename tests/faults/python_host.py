"""One Python host invocation in a fresh process (the twin of node_host.cjs): reads
{"event", "context", "seed"} as JSON on stdin, runs the Lambda handler with the
process environment, and prints one JSON line on stdout: {"result": …} when the
handler returned, {"error": {"message", "result"}} when it raised. Log lines go to
stderr; the metrics line is dropped. Used where the process itself is measured
(tests/faults/test_bounds.py: its peak RSS)."""

from __future__ import annotations

import json
import os
import sys
import types
import uuid

from consul_lambda_sync.host.handler import SyncFailed, handler
from consul_lambda_sync.host.log import JsonLogger


def main() -> None:
    payload = json.load(sys.stdin)
    ctx = payload.get("context") or {}
    context = types.SimpleNamespace(
        invoked_function_arn=ctx.get("invokedFunctionArn"), aws_request_id=str(uuid.uuid4())
    )
    log = JsonLogger(os.environ.get("LOG_LEVEL", "info"), stream=sys.stderr)
    try:
        result = handler(
            payload["event"], context, log=log, stdout=lambda _: None, seed=payload.get("seed")
        )
        out: dict[str, object] = {"result": result}
    except SyncFailed as e:
        out = {"error": {"message": str(e), "result": e.summary}}
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
