"""Binding overhead: plan() of 10,000 functions, dict in → dict out.

Builds a full-sync input with 10,000 enabled functions of 1 to 3 aliases each
(so 2 to 4 services per function), half of them already registered in Consul
exactly as wanted, and times ``consul_lambda_sync.plan`` end to end over several
runs. It also times the parts: ``json.dumps`` of the input, the native call
(JSON text in, JSON text out, the core's own work), and reading the output, so
the binding's share is visible; and, for comparison, a plain ``json.loads`` of
the output with the cyclic GC running (what plan() avoids for large outputs).

    python bindings/python/bench/bench_plan.py [--functions N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

import consul_lambda_sync as cls
from consul_lambda_sync import _native

ENABLED = "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled"
ALIASES = "serverless.consul.hashicorp.com/v1alpha1/lambda/aliases"
ACCOUNT, REGION = "123456789012", "us-east-1"


def functions(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        aliases = "+".join(f"a{k}" for k in range(1 + i % 3))
        out.append(
            {
                "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn-{i:05d}",
                "tags": {ENABLED: "true", ALIASES: aliases},
            }
        )
    return out


def inventory(fns: list[dict[str, Any]]) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "region": REGION, "functions": fns}


def build_input(n: int) -> dict[str, Any]:
    """The plan input; Consul's state for every other function is what the core
    itself asks to write for it, so those services are unchanged."""
    fns = functions(n)
    empty = {"scopes": [{"nodeServices": None, "serviceDefaults": []}]}
    seed = cls.plan({"inventory": inventory(fns[::2]), "consul": empty})
    services, entries = [], []
    for op in seed["operations"]:
        body = op["request"].get("body")
        if op["kind"] == "registerService":
            services.append(body["Service"])
        elif op["kind"] == "upsertConfigEntry":
            entries.append(body)
    consul = {
        "scopes": [
            {
                "nodeServices": {"Node": {"Node": "lambdas"}, "Services": services},
                "serviceDefaults": entries,
            }
        ]
    }
    return {"config": {"nodeName": "lambdas"}, "inventory": inventory(fns), "consul": consul}


def median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    data = build_input(args.functions)
    result = cls.plan(data)
    s = result["summary"]
    assert s["errors"] == 0, result["errors"][:3]
    assert s["unchanged"] > 0, s
    assert s["create"] > 0, s
    text = json.dumps(data, separators=(",", ":"))
    out = _native.call("plan", text)
    print(
        f"input: {args.functions} functions, {s['create'] + s['unchanged']} services "
        f"({s['unchanged']} unchanged, {s['create']} to create), {len(text) / 1e6:.1f} MB JSON in, "
        f"{len(out) / 1e6:.1f} MB out, {s['operations']} operations"
    )

    parts = {
        "plan() end to end (dict in, dict out)": lambda: cls.plan(data),
        "  json.dumps(input)": lambda: json.dumps(data, allow_nan=False, separators=(",", ":")),
        "  _native.call (core: parse, plan, write)": lambda: _native.call("plan", text),
        "  output read as plan() does (GC paused)": lambda: cls._loads(out),
        "  (plain json.loads(output), GC running)": lambda: json.loads(out),
    }
    for name, fn in parts.items():
        med, best = median_ms(fn, args.runs)
        print(f"{name:45s} median {med:8.1f} ms   min {best:8.1f} ms   ({args.runs} runs)")


if __name__ == "__main__":
    main()
