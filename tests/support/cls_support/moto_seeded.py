"""A moto server with a seeding side door, for benchmarks at 10,000 functions.

Creating 10,000 functions through boto3 ``CreateFunction`` means 10,000 signed
HTTP requests, each carrying a base64 zip: minutes of setup. This process runs
the ordinary moto server (the same WSGI application as ``python -m moto.server``)
and, in the same process, answers a few ``/_bench/*`` requests that write moto's
backend directly (``LambdaBackend.create_function`` / ``tag_resource`` /
``delete_function``, the methods moto's own HTTP handlers call). 10,000
functions take about a second. Everything the registrators read afterwards goes
through moto's real API handlers.

    POST /_bench/seed   {"functions": N}  reset moto, create the N bench functions
    POST /_bench/churn  {}                change 5% of the functions' tags, delete 2%
    GET  /_bench/desired                  the services the current tags ask for

The functions are deterministic (``spec(i)``): ``fn-00000``..; every one is
enabled; function i has ``i % 4`` aliases (0-3) from prod/staging/dev;
``payload-passthrough=true`` when i % 5 == 0; ``invocation-mode=ASYNCHRONOUS``
(upper case, which both registrators accept) when i % 7 == 0.

Usage: python -m cls_support.moto_seeded --port PORT
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import threading
import time
import zipfile
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"
ALIASES = ("prod", "staging", "dev")


def name_of(i: int) -> str:
    return f"fn-{i:05d}"


def spec_tags(i: int) -> dict[str, str]:
    tags = {PREFIX + "enabled": "true", "team": "bench"}
    n = i % 4
    if n:
        tags[PREFIX + "aliases"] = "+".join(ALIASES[:n])
    if i % 5 == 0:
        tags[PREFIX + "payload-passthrough"] = "true"
    if i % 7 == 0:
        tags[PREFIX + "invocation-mode"] = "ASYNCHRONOUS"
    return tags


def churn_plan(n: int) -> dict[str, Any]:
    """5% of the functions get a tag change (a third each: payload-passthrough
    flipped, alias set changed, disabled), 2% are deleted. Disjoint sets."""
    changed = [i for i in range(n) if i % 20 == 3]
    deleted = [i for i in range(n) if i % 50 == 49]
    return {"changed": changed, "deleted": deleted}


class Bench:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("index.py", "def handler(event, context):\n    return 1\n")
        self.zip_b64 = base64.b64encode(buf.getvalue()).decode()

    @staticmethod
    def backend() -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[ACCOUNT][REGION]

    def reset(self) -> None:
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data

        BackendDict.reset()
        reset_model_data()

    def seed(self, n: int) -> dict[str, Any]:
        with self.lock:
            start = time.monotonic()
            self.reset()
            from moto.iam.models import iam_backends

            role = iam_backends[ACCOUNT]["global"].create_role(
                role_name="bench-fn",
                assume_role_policy_document="{}",
                path="/",
                permissions_boundary=None,
                description="bench",
                tags=[],
                max_session_duration="3600",
            )
            be = self.backend()
            for i in range(n):
                be.create_function(
                    {
                        "FunctionName": name_of(i),
                        "Runtime": "python3.12",
                        "Role": role.arn,
                        "Handler": "index.handler",
                        "Code": {"ZipFile": self.zip_b64},
                        "Tags": spec_tags(i),
                    }
                )
                # Every alias churn may name exists, as in a real account.
                for alias in ALIASES:
                    be.create_alias(alias, name_of(i), "$LATEST", "", None)
            return {"created": n, "seconds": round(time.monotonic() - start, 3)}

    def churn(self) -> dict[str, Any]:
        with self.lock:
            be = self.backend()
            names = sorted(f.function_name for f in be.list_functions())
            n = len(names)
            plan = churn_plan(n)
            kinds: dict[str, int] = {"payload": 0, "aliases": 0, "disabled": 0}
            for k, i in enumerate(plan["changed"]):
                arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name_of(i)}"
                tags = be.list_tags(arn)
                if k % 3 == 0:
                    on = tags.get(PREFIX + "payload-passthrough") == "true"
                    be.tag_resource(
                        arn, {PREFIX + "payload-passthrough": "false" if on else "true"}
                    )
                    kinds["payload"] += 1
                elif k % 3 == 1:
                    m = (i % 4 + 1) % 4
                    if m:
                        be.tag_resource(arn, {PREFIX + "aliases": "+".join(ALIASES[:m])})
                    else:
                        be.untag_resource(arn, [PREFIX + "aliases"])
                    kinds["aliases"] += 1
                else:
                    be.tag_resource(arn, {PREFIX + "enabled": "false"})
                    kinds["disabled"] += 1
            for i in plan["deleted"]:
                be.delete_function(name_of(i))
            return {
                "functions": n,
                "changed": len(plan["changed"]),
                "deleted": len(plan["deleted"]),
                "kinds": kinds,
            }

    def desired(self) -> dict[str, Any]:
        """What Consul should hold: service name -> Lambda arguments (from the tags)."""
        with self.lock:
            out: dict[str, Any] = {}
            for fn in self.backend().list_functions():
                tags = fn.tags or {}
                if str(tags.get(PREFIX + "enabled", "")).lower() != "true":
                    continue
                arn = fn.function_arn
                args = {
                    "payloadPassthrough": str(tags.get(PREFIX + "payload-passthrough", "")).lower()
                    == "true",
                    "invocationMode": str(
                        tags.get(PREFIX + "invocation-mode") or "SYNCHRONOUS"
                    ).lower(),
                }
                out[fn.function_name] = {"arn": arn, **args}
                raw = tags.get(PREFIX + "aliases")
                for alias in raw.split("+") if raw else []:
                    out[f"{fn.function_name}-{alias}"] = {"arn": f"{arn}:{alias}", **args}
            return {"services": out}


def make_app(bench: Bench) -> Any:
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_bench/"):
            return moto_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
            method = environ.get("REQUEST_METHOD")
            if path == "/_bench/seed" and method == "POST":
                result = bench.seed(int(body.get("functions", 0)))
            elif path == "/_bench/churn" and method == "POST":
                result = bench.churn()
            elif path == "/_bench/desired" and method == "GET":
                result = bench.desired()
            else:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"unknown bench request"]
        except Exception as e:  # reported to the harness, which fails loudly
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"{type(e).__name__}: {e}".encode()]
        data = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]

    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--host must be a loopback address")
    server = make_server(
        args.host, args.port, make_app(Bench()), True, request_handler=MotoRequestHandler
    )
    print(f"moto_seeded listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
