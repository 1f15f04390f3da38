"""Full-sync benchmark: consul-lambda-sync against the upstream Go registrator.

For each size N and each registrator, on a fresh Consul dev agent and a moto
server seeded with N functions (0-3 aliases each, see bench/moto_seeded.py):

  cold    the first full sync, Consul empty
  steady  the next full sync, nothing changed
  churn   5% of the functions' tags changed, 2% of the functions deleted, one sync

Each sync is one invocation of the registrator through a local Lambda Runtime
API (the same event EventBridge's schedule sends). Requests are counted by the
recording proxies in front of Consul and moto, never by the code under test.
After each sync Consul is read directly and compared with what the tags ask for.

Usage:
  python bench/run.py [--functions 1000 10000] [--impl ours upstream]
                      [--out results.json] [--markdown tables.md] [--check]

--check fails (exit 1) on a count regression of ours: steady writes != 0, steady
reads over the bound, cold/churn writes over the minimum, any state not
converged. Never on time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import cls_support as sup

STATES = ("cold", "steady", "churn")
LAMBDA_MAX_SECONDS = 900


def log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def summarize_proxy(stats: dict[str, Any]) -> dict[str, Any]:
    ops = {op: s["count"] for op, s in sorted((stats.get("ops") or {}).items())}
    return {
        "requests": stats.get("requests", 0),
        "reads": stats.get("reads", 0),
        "writes": stats.get("writes", 0),
        "ops": ops,
    }


def run_one(
    impl: str,
    n: int,
    moto: sup.MotoSeeded,
    consul_bin: str,
    workdir: Path,
    timeout: float,
    latency: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """The three states for one registrator at one size. ``latency``: milliseconds
    the proxies add to every (AWS, Consul) request, to stand for a network."""
    consul = sup.ConsulAgent(consul_bin, workdir / f"consul-{impl}-{n}").start()
    cproxy = sup.Proxy("consul", consul.addr, workdir).start()
    aproxy = sup.Proxy("aws", moto.url, workdir).start()
    if latency[0]:
        aproxy.faults([{"match": "", "action": "delay", "delay_ms": latency[0]}])
    if latency[1]:
        cproxy.faults([{"match": "", "action": "delay", "delay_ms": latency[1]}])
    runtime = sup.RuntimeAPI()
    reg: Optional[sup.Registrator] = None
    out: dict[str, Any] = {
        "impl": impl,
        "functions": n,
        "states": {},
        "latency_ms": {"aws": latency[0], "consul": latency[1]},
    }
    try:
        seeded = moto.seed(n)
        out["seed_seconds"] = seeded["seconds"]
        out["reference_pages"] = moto.reference_pages()
        t0 = time.monotonic()
        reg = sup.Registrator(impl, runtime, cproxy.url, aproxy.url, workdir).start()
        out["init_seconds"] = round(time.monotonic() - t0, 3)
        before: dict[str, Any] = {}
        for state in STATES:
            if state == "churn":
                out["churn"] = moto.churn()
            desired = moto.desired()
            cproxy.reset()
            aproxy.reset()
            result, cpu = reg.invoke(sup.schedule_event(), timeout)
            cstats, astats = cproxy.stats(), aproxy.stats()
            check = sup.compare(consul, desired)
            row: dict[str, Any] = {
                "ok": result.ok,
                "seconds": round(result.seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "consul": summarize_proxy(cstats),
                "aws": summarize_proxy(astats),
                "services": len(desired),
                # Ours writes the catalog through /v1/txn (128 operations a request).
                "minimal_writes": (
                    sup.minimal_txn_writes(before, desired)
                    if impl == "ours"
                    else sup.minimal_writes(before, desired)
                ),
                "check": check,
            }
            if not result.ok:
                row["error"] = str((result.error or {}).get("errorMessage", ""))[:500]
            row["reads"] = row["consul"]["reads"] + row["aws"]["reads"]
            row["writes"] = row["consul"]["writes"] + row["aws"]["writes"]
            out["states"][state] = row
            before = desired
            log(
                f"{impl:8} N={n:<6} {state:6} {row['seconds']:9.2f}s "
                f"cpu {row['cpu_seconds']:8.2f}s "
                f"reads {row['reads']:6} writes {row['writes']:6} "
                f"(min {row['minimal_writes']}) converged={check['converged']} ok={result.ok}"
                + (f" error={row.get('error', '')[:120]}" if not result.ok else "")
            )
    finally:
        if reg is not None:
            reg.stop()
        runtime.close()
        aproxy.stop()
        cproxy.stop()
        consul.stop()
    return out


def read_bound(n: int, reference_pages: int) -> dict[str, int]:
    return {"strict": math.ceil(n / 100) + 5, "moto": reference_pages + 5}


def checks(results: list[dict[str, Any]], strict_reads: bool = False) -> list[str]:
    """Count regressions of ours (never time). The steady read bound is the
    GetResources pages the server needs at 100 functions a page, + 5; with
    ``strict_reads``, ceil(N/100) + 5 (moto needs more pages when functions carry
    several tags, unless the request asks for TagsPerPage=500)."""
    failures = []
    for r in results:
        if r["impl"] != "ours":
            continue
        n = r["functions"]
        st = r["states"]
        bound = read_bound(n, r["reference_pages"])["strict" if strict_reads else "moto"]
        for state in STATES:
            row = st.get(state)
            if row is None:
                failures.append(f"N={n} {state}: did not run")
                continue
            if not row["ok"]:
                failures.append(f"N={n} {state}: the invocation failed: {row.get('error')}")
            if not row["check"]["converged"]:
                failures.append(f"N={n} {state}: not converged after one sync: {row['check']}")
            if row["writes"] > row["minimal_writes"]:
                failures.append(
                    f"N={n} {state}: {row['writes']} writes, the minimum is {row['minimal_writes']}"
                )
        steady = st.get("steady")
        if steady is not None:
            if steady["writes"] != 0:
                failures.append(f"N={n} steady: {steady['writes']} writes (must be 0)")
            if steady["reads"] > bound:
                failures.append(f"N={n} steady: {steady['reads']} reads > bound {bound}")
        churn = st.get("churn")
        if churn is not None:
            deleted = int((r.get("churn") or {}).get("deleted", 0))
            if churn["reads"] > bound + deleted:
                failures.append(
                    f"N={n} churn: {churn['reads']} reads > bound {bound} + {deleted} confirmations"
                )
    return failures


def fmt_s(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def ratio(a: float, b_: float) -> str:
    if not a or not b_:
        return "–"
    r = b_ / a
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by = {(r["impl"], r["functions"], s): row for r in results for s, row in r["states"].items()}
    sizes = sorted({r["functions"] for r in results})
    lines = []
    lines.append(
        "| N | state | services | ours s | upstream s | speed-up | ours CPU s | upstream CPU s "
        "| ours reads (AWS+Consul) | upstream reads | ours writes | upstream writes "
        "| minimal writes | ours converged | upstream converged |"
    )
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for n in sizes:
        for s in STATES:
            o = by.get(("ours", n, s))
            u = by.get(("upstream", n, s))
            ref = o or u
            if ref is None:
                continue

            def cell(row: Optional[dict[str, Any]], key: str) -> str:
                if row is None:
                    return "–"
                if key == "reads":
                    return f"{row['reads']} ({row['aws']['reads']}+{row['consul']['reads']})"
                if key == "converged":
                    c = row["check"]
                    if c["converged"]:
                        return "yes" if row["ok"] else "yes (invocation failed)"
                    parts = [
                        f"{c[k]} {k.replace('_', ' ')}"
                        for k in ("missing", "extra", "drifted", "stale_entries")
                        if c[k]
                    ]
                    return "no: " + ", ".join(parts)
                if key in ("seconds", "cpu_seconds"):
                    return fmt_s(row[key])
                return str(row[key])

            lines.append(
                f"| {n:,} | {s} | {ref['services']:,} "
                f"| {cell(o, 'seconds')} | {cell(u, 'seconds')} "
                f"| {ratio(o['seconds'], u['seconds']) if o and u else '–'} "
                f"| {cell(o, 'cpu_seconds')} | {cell(u, 'cpu_seconds')} "
                f"| {cell(o, 'reads')} | {cell(u, 'reads')} "
                f"| {cell(o, 'writes')} | {cell(u, 'writes')} "
                f"| {ref['minimal_writes']} | {cell(o, 'converged')} | {cell(u, 'converged')} |"
            )
    lines.append("")
    lines.append("Requests by operation (steady state):")
    lines.append("")
    lines.append("| N | registrator | AWS | Consul |")
    lines.append("|---:|---|---|---|")
    for n in sizes:
        for impl in ("ours", "upstream"):
            row = by.get((impl, n, "steady"))
            if row is None:
                continue
            aws = ", ".join(f"{k} {v}" for k, v in row["aws"]["ops"].items())
            con = ", ".join(f"{k} {v}" for k, v in row["consul"]["ops"].items())
            lines.append(f"| {n:,} | {impl} | {aws or '–'} | {con or '–'} |")
    lines.append("")
    lines.append("Steady-state read bound (ours):")
    lines.append("")
    lines.append(
        "| N | ours steady reads | ceil(N/100)+5 | tagging pages moto needs at 100/page, +5 |"
    )
    lines.append("|---:|---:|---:|---:|")
    for r in results:
        if r["impl"] != "ours" or "steady" not in r["states"]:
            continue
        bd = read_bound(r["functions"], r["reference_pages"])
        lines.append(
            f"| {r['functions']:,} | {r['states']['steady']['reads']} | {bd['strict']} "
            f"| {bd['moto']} |"
        )
    lines.append("")
    lat = meta.get("latency_ms") or {}
    if lat.get("aws") or lat.get("consul"):
        lines.append(
            f"Latency added at the proxies: {lat.get('aws')} ms per AWS request, "
            f"{lat.get('consul')} ms per Consul request."
        )
        lines.append("")
    lines.append(
        f"Machine: {meta['machine']}; moto {meta['moto']}; Consul {meta['consul']}; "
        f"upstream: {meta['upstream']}; run {meta['date']}."
    )
    return "\n".join(lines) + "\n"


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM/SIGHUP: unwind, so that every server this run started is stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    p = argparse.ArgumentParser(description="full-sync benchmark against the upstream registrator")
    p.add_argument("--functions", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--impl", nargs="+", choices=["ours", "upstream"], default=["ours", "upstream"])
    p.add_argument("--out", type=Path, help="write the raw results as JSON")
    p.add_argument("--markdown", type=Path, help="write the tables as Markdown")
    p.add_argument("--check", action="store_true", help="fail on count regressions of ours")
    p.add_argument(
        "--strict-reads",
        action="store_true",
        help="--check the steady reads against ceil(N/100)+5 instead of moto's pages + 5",
    )
    p.add_argument("--timeout", type=float, default=7200, help="seconds one sync may take")
    p.add_argument(
        "--latency-ms",
        type=int,
        nargs=2,
        metavar=("AWS", "CONSUL"),
        default=(0, 0),
        help="add this many ms to every AWS / Consul request at the proxies (a network)",
    )
    args = p.parse_args(argv)

    impls = list(args.impl)
    if "upstream" in impls and sup.upstream_binary() is None:
        log(
            "upstream registrator binary not found (set UPSTREAM_REGISTRATOR_BIN or run "
            "bench/upstream/build.sh); running ours only"
        )
        impls.remove("upstream")
    if not impls:
        return 2
    consul_bin = sup.consul_binary()
    workdir = sup.make_workdir("bench")
    moto = sup.MotoSeeded(workdir).start()
    results = []
    try:
        for n in args.functions:
            for impl in impls:
                results.append(
                    run_one(
                        impl, n, moto, consul_bin, workdir, args.timeout, tuple(args.latency_ms)
                    )
                )
    finally:
        moto.stop()
    import moto as moto_pkg  # the venv's moto (the server's too)

    consul_version = subprocess.run(
        [consul_bin, "version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "moto": moto_pkg.__version__,
        "consul": consul_version,
        "upstream": sup.upstream_binary() if "upstream" in impls else "not run",
        "latency_ms": {"aws": args.latency_ms[0], "consul": args.latency_ms[1]},
    }
    doc = {"meta": meta, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))
    md = markdown(results, meta)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md)
    print(md)
    sup.remove_workdir(workdir)
    if args.check:
        failures = checks(results, args.strict_reads)
        for f in failures:
            log(f"FAIL {f}")
        if failures:
            return 1
        log(f"count checks passed for N={args.functions}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
