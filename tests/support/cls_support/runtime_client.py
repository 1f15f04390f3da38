"""Runs a Python Lambda handler against a Lambda Runtime API, like Lambda's own
Python runtime does: poll ``/2018-06-01/runtime/invocation/next``, call the
handler with the event and a context, post the result to ``.../response`` or the
exception to ``.../error``. Used by the benchmark to invoke
``consul_lambda_sync.host.handler.handler`` exactly the way the upstream Go
registrator is invoked (through ``AWS_LAMBDA_RUNTIME_API``), so both are timed
from the same place.

Usage: AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT python -m cls_support.runtime_client module.function
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import types
import urllib.request
from typing import Any


def main(argv: list[str]) -> int:
    if len(argv) != 1 or "." not in argv[0]:
        sys.stderr.write("usage: python -m cls_support.runtime_client module.function\n")
        return 2
    module_name, func_name = argv[0].rsplit(".", 1)
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    base = f"http://{api}/2018-06-01/runtime"
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as e:  # init error: reported like Lambda does
        post(f"{base}/init/error", {"errorMessage": str(e), "errorType": type(e).__name__})
        raise
    while True:
        with urllib.request.urlopen(f"{base}/invocation/next", timeout=None) as resp:
            request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(resp.headers.get("Lambda-Runtime-Deadline-Ms") or 0)
            context = types.SimpleNamespace(
                aws_request_id=request_id,
                invoked_function_arn=resp.headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
                function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "consul-lambda-sync"),
                get_remaining_time_in_millis=lambda d=deadline_ms: max(
                    0, d - int(time.time() * 1000)
                ),
            )
            event = json.loads(resp.read() or b"null")
        try:
            result = handler(event, context)
        except Exception as e:
            sys.stderr.write(traceback.format_exc())
            post(
                f"{base}/invocation/{request_id}/error",
                {"errorMessage": str(e)[:4000], "errorType": type(e).__name__},
            )
            continue
        post(f"{base}/invocation/{request_id}/response", result)


def post(url: str, body: Any) -> None:
    data = json.dumps(body, default=str).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
