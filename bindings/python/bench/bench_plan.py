"""Binding overhead: plan() of 10,000 functions, dict in → dict out.

Plans the shared workload of core/benches/workload.rs (10,000 functions with 0
to 3 aliases, half registered exactly as wanted, 1% drifted, 1% orphans; written
by ``cargo run --example bench_input``), and times ``consul_lambda_sync.plan``
end to end over several runs. It also times the parts: ``json.dumps`` of the input, the native call
(JSON text in, JSON text out, the core's own work), and reading the output, so
the binding's share is visible; and, for comparison, a plain ``json.loads`` of
the output with the cyclic GC running (what plan() avoids for large outputs).

    python bindings/python/bench/bench_plan.py [--functions N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import consul_lambda_sync as cls
from consul_lambda_sync import _native

REPO = Path(__file__).resolve().parents[3]


def build_input(n: int) -> dict[str, Any]:
    """The shared planner workload (core/benches/workload.rs), as
    ``cargo run --example bench_input`` writes it, so that this benchmark plans
    exactly what the Rust and Node benchmarks plan."""
    out = subprocess.run(
        [
            "cargo",
            "run",
            "-q",
            "--release",
            "-p",
            "consul-lambda-sync",
            "--example",
            "bench_input",
            "--",
            str(n),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


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
