"""Full-sync benchmark: consul-lambda-sync's two hosts against the upstream Go registrator.

For each size N and each registrator (``python``: our Python host, ``node``: our
Node host, ``upstream``: HashiCorp's Go registrator; ``ours`` is an alias of
``python``), on a fresh Consul dev agent and a moto server seeded with N
functions (0-3 aliases each, see cls_support/moto_seeded.py):

  cold    the first full sync, Consul empty
  steady  the next full sync, nothing changed
  churn   5% of the functions' tags changed, 2% of the functions deleted, one sync

Each sync is one invocation of a fresh registrator process (started, invoked
once, stopped: a cold Lambda environment each time) through a local Lambda
Runtime API (the same event EventBridge's schedule sends), with its shipped
defaults. Requests are counted, and the wave of each operation timed, by the
recording proxies in front of Consul and moto, never by the code under test. The
process's CPU time (user+system) and peak RSS (VmHWM) come from /proc. After
each sync Consul is read directly and compared with what the tags ask for.

Usage:
  python bench/run.py [--functions 1000 10000] [--impl python node upstream]
                      [--skip upstream:10000] [--config-floor 2500]
                      [--out results.json] [--markdown tables.md] [--check]

--check fails (exit 1) on a count regression of our hosts: Consul writes other
than exactly the minimum (ceil(catalog operations/128) transactions + one write
per service-defaults entry), any AWS write, steady reads over the bound, any
state not converged. Never on time.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import cls_support as sup

STATES = ("cold", "steady", "churn")
OURS = ("python", "node")
ALIASES = {"ours": "python"}
LAMBDA_MAX_SECONDS = 900


def log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def summarize_proxy(stats: dict[str, Any]) -> dict[str, Any]:
    raw = sorted((stats.get("ops") or {}).items())
    return {
        "requests": stats.get("requests", 0),
        "reads": stats.get("reads", 0),
        "writes": stats.get("writes", 0),
        "ops": {op: s["count"] for op, s in raw},
        # Each operation's wave as the proxy saw it: first arrival to last answer.
        "waves": {
            op: {
                "count": s["count"],
                "seconds": round((s.get("last_ms", 0) - s.get("first_ms", 0)) / 1000, 3),
                "busy_seconds": round(s.get("busy_ms", 0) / 1000, 3),
            }
            for op, s in raw
        },
    }


def run_one(
    impl: str,
    n: int,
    moto: sup.MotoSeeded,
    consul_bin: str,
    workdir: Path,
    timeout: float,
    latency: tuple[int, int] = (0, 0),
    extra_env: Optional[dict[str, str]] = None,
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
        before: dict[str, Any] = {}
        for state in STATES:
            if state == "churn":
                out["churn"] = moto.churn()
            desired = moto.desired()
            cproxy.reset()
            aproxy.reset()
            # A fresh process per invocation (a cold Lambda environment).
            reg = sup.Registrator(impl, runtime, cproxy.url, aproxy.url, workdir, extra_env).start()
            try:
                result, cpu = reg.invoke(sup.schedule_event(), timeout)
                cpu_total = reg.cpu_seconds()
                rss = reg.peak_rss_mb()
            finally:
                reg.stop()
            cstats, astats = cproxy.stats(), aproxy.stats()
            check = sup.compare(consul, desired)
            row: dict[str, Any] = {
                "ok": result.ok,
                "seconds": round(result.seconds, 3),
                "start_seconds": round(reg.start_seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "cpu_total_seconds": round(cpu_total, 3),
                "peak_rss_mb": round(rss, 1),
                "consul": summarize_proxy(cstats),
                "aws": summarize_proxy(astats),
                "services": len(desired),
                # Ours writes the catalog through /v1/txn (128 operations a request).
                "minimal_writes": (
                    sup.minimal_txn_writes(before, desired)
                    if impl in OURS
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
            cfg = row["consul"]["waves"].get("PUT /v1/config", {})
            log(
                f"{impl:8} N={n:<6} {state:6} {row['seconds']:9.2f}s "
                f"cpu {row['cpu_seconds']:7.2f}s (+start {cpu_total - cpu:.2f}s) "
                f"rss {rss:6.0f}MiB reads {row['reads']:6} writes {row['writes']:6} "
                f"(min {row['minimal_writes']}) config wave {cfg.get('seconds', 0):.2f}s "
                f"converged={check['converged']} ok={result.ok}"
                + (f" error={row.get('error', '')[:120]}" if not result.ok else "")
            )
    finally:
        runtime.close()
        aproxy.stop()
        cproxy.stop()
        consul.stop()
    return out


def read_bound(n: int, reference_pages: int) -> dict[str, int]:
    return {"strict": math.ceil(n / 100) + 5, "moto": reference_pages + 5}


def checks(results: list[dict[str, Any]], strict_reads: bool = False) -> list[str]:
    """Count regressions of our hosts (never time). Consul writes must be exactly
    the minimum (ceil(catalog operations/128) transactions + one write per
    service-defaults entry) and AWS writes zero. The steady read bound is the
    GetResources pages the server needs at 100 functions a page, + 5; with
    ``strict_reads``, ceil(N/100) + 5 (moto needs more pages when functions carry
    several tags, unless the request asks for TagsPerPage=500)."""
    failures = []
    for r in results:
        if r["impl"] not in OURS:
            continue
        n = r["functions"]
        who = f"{r['impl']} N={n}"
        st = r["states"]
        bound = read_bound(n, r["reference_pages"])["strict" if strict_reads else "moto"]
        for state in STATES:
            row = st.get(state)
            if row is None:
                failures.append(f"{who} {state}: did not run")
                continue
            if not row["ok"]:
                failures.append(f"{who} {state}: the invocation failed: {row.get('error')}")
            if not row["check"]["converged"]:
                failures.append(f"{who} {state}: not converged after one sync: {row['check']}")
            if row["consul"]["writes"] != row["minimal_writes"]:
                failures.append(
                    f"{who} {state}: {row['consul']['writes']} Consul writes "
                    f"({row['consul']['ops']}), exactly {row['minimal_writes']} expected"
                )
            if row["aws"]["writes"]:
                failures.append(f"{who} {state}: {row['aws']['writes']} AWS writes (must be 0)")
        steady = st.get("steady")
        if steady is not None and steady["reads"] > bound:
            failures.append(f"{who} steady: {steady['reads']} reads > bound {bound}")
        churn = st.get("churn")
        if churn is not None:
            deleted = int((r.get("churn") or {}).get("deleted", 0))
            if churn["reads"] > bound + deleted:
                failures.append(
                    f"{who} churn: {churn['reads']} reads > bound {bound} + {deleted} confirmations"
                )
    return failures


def config_floor(consul_bin: str, workdir: Path, entries: int, concurrency: int) -> dict[str, Any]:
    """The floor of a cold sync's service-defaults wave: ``entries`` entries like
    ours written one ``PUT /v1/config`` each, ``concurrency`` at once (a keep-alive
    connection per worker), on a fresh agent, nothing else running against it."""
    consul = sup.ConsulAgent(consul_bin, workdir / f"consul-floor-{concurrency}").start()
    try:
        u = urlsplit(consul.addr if "://" in consul.addr else f"http://{consul.addr}")
        local = threading.local()

        def put(i: int) -> int:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=60)
            name = f"floor-fn-{i}"
            body = json.dumps(
                {
                    "Kind": "service-defaults",
                    "Name": name,
                    "Protocol": "http",
                    "EnvoyExtensions": [
                        {
                            "Name": "builtin/aws/lambda",
                            "Required": False,
                            "Arguments": {
                                "ARN": f"arn:aws:lambda:{sup.REGION}:{sup.ACCOUNT}:function:{name}",
                                "PayloadPassthrough": False,
                                "InvocationMode": "synchronous",
                            },
                        }
                    ],
                }
            )
            conn.request("PUT", "/v1/config", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            return resp.status

        t0 = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            statuses = list(pool.map(put, range(entries)))
        seconds = time.monotonic() - t0
    finally:
        consul.stop()
    bad = sum(1 for st in statuses if st != 200)
    log(f"config floor: {entries} PUT /v1/config, {concurrency} at once: {seconds:.2f}s")
    if bad:
        log(f"config floor: {bad} of the writes failed")
    return {
        "entries": entries,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "failed": bad,
    }


def fmt_s(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def ratio(a: float, b_: float) -> str:
    if not a or not b_:
        return "–"
    r = b_ / a
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


def converged_cell(row: dict[str, Any]) -> str:
    c = row["check"]
    if c["converged"]:
        return "yes" if row["ok"] else "yes (invocation failed)"
    parts = [
        f"{c[k]} {k.replace('_', ' ')}"
        for k in ("missing", "extra", "drifted", "stale_entries")
        if c[k]
    ]
    return "no: " + ", ".join(parts)


def writes_cell(row: dict[str, Any]) -> str:
    ops = row["consul"]["ops"]
    txn = ops.get("PUT /v1/txn", 0)
    cfg = sum(v for k, v in ops.items() if k.startswith(("PUT /v1/config", "DELETE /v1/config")))
    cat = sum(v for k, v in ops.items() if k.startswith("PUT /v1/catalog/"))
    other = row["writes"] - txn - cfg - cat
    parts = [f"{txn} txn"] if txn else []
    parts += [f"{cat} catalog"] if cat else []
    parts += [f"{cfg} config"] if cfg else []
    parts += [f"{other} other"] if other else []
    return f"{row['writes']}" + (f" ({' + '.join(parts)})" if parts and row["writes"] else "")


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by = {(r["impl"], r["functions"], s): row for r in results for s, row in r["states"].items()}
    sizes = sorted({r["functions"] for r in results})
    impls = [i for i in (*OURS, "upstream") if any(r["impl"] == i for r in results)]
    lines = []
    lines.append(
        "| N | state | services | registrator | wall s | vs upstream | CPU s | CPU s with start-up "
        "| peak RSS MiB | reads (AWS+Consul) | writes | minimal writes | config-write wave s "
        "| converged |"
    )
    lines.append("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for s in STATES:
            for impl in impls:
                row = by.get((impl, n, s))
                if row is None:
                    continue
                up = by.get(("upstream", n, s))
                speed = ratio(row["seconds"], up["seconds"]) if up and impl != "upstream" else "–"
                wave = row["consul"]["waves"].get("PUT /v1/config")
                lines.append(
                    f"| {n:,} | {s} | {row['services']:,} | {impl} | {fmt_s(row['seconds'])} "
                    f"| {speed} | {fmt_s(row['cpu_seconds'])} | {fmt_s(row['cpu_total_seconds'])} "
                    f"| {row['peak_rss_mb']:.0f} "
                    f"| {row['reads']} ({row['aws']['reads']}+{row['consul']['reads']}) "
                    f"| {writes_cell(row)} | {row['minimal_writes']} "
                    f"| {fmt_s(wave['seconds']) if wave else '–'} | {converged_cell(row)} |"
                )
    lines.append("")
    lines += markdown_details(results, meta, by, sizes, impls)
    return "\n".join(lines) + "\n"


def markdown_details(
    results: list[dict[str, Any]],
    meta: dict[str, Any],
    by: dict[tuple[str, int, str], dict[str, Any]],
    sizes: list[int],
    impls: list[str],
) -> list[str]:
    """The tables under the main one: steady requests, read bound, config floor, notes."""
    lines = ["Requests by operation (steady state):", ""]
    lines.append("| N | registrator | AWS | Consul |")
    lines.append("|---:|---|---|---|")
    for n in sizes:
        for impl in impls:
            row = by.get((impl, n, "steady"))
            if row is None:
                continue
            aws = ", ".join(f"{k} {v}" for k, v in row["aws"]["ops"].items())
            con = ", ".join(f"{k} {v}" for k, v in row["consul"]["ops"].items())
            lines.append(f"| {n:,} | {impl} | {aws or '–'} | {con or '–'} |")
    lines.append("")
    lines.append("Steady-state read bound (our hosts):")
    lines.append("")
    lines.append(
        "| N | registrator | steady reads | ceil(N/100)+5 "
        "| tagging pages moto needs at 100/page, +5 |"
    )
    lines.append("|---:|---|---:|---:|---:|")
    for r in results:
        if r["impl"] not in OURS or "steady" not in r["states"]:
            continue
        bd = read_bound(r["functions"], r["reference_pages"])
        lines.append(
            f"| {r['functions']:,} | {r['impl']} | {r['states']['steady']['reads']} "
            f"| {bd['strict']} | {bd['moto']} |"
        )
    lines.append("")
    floors = meta.get("config_floor") or []
    if floors:
        lines.append(
            "Floor of the service-defaults wave: N `PUT /v1/config` alone on a fresh agent:"
        )
        lines.append("")
        lines.append("| entries | at once | seconds |")
        lines.append("|---:|---:|---:|")
        for f in floors:
            lines.append(f"| {f['entries']:,} | {f['concurrency']} | {fmt_s(f['seconds'])} |")
        lines.append("")
    lat = meta.get("latency_ms") or {}
    if lat.get("aws") or lat.get("consul"):
        lines.append(
            f"Latency added at the proxies: {lat.get('aws')} ms per AWS request, "
            f"{lat.get('consul')} ms per Consul request."
        )
        lines.append("")
    if meta.get("skipped"):
        lines.append(f"Skipped: {', '.join(meta['skipped'])}.")
        lines.append("")
    if meta.get("env"):
        lines.append(f"Registrator environment added: {meta['env']}.")
        lines.append("")
    lines.append(
        f"Machine: {meta['machine']}; moto {meta['moto']}; {meta['consul']}; "
        f"upstream: {meta['upstream']}; run {meta['date']}."
    )
    return lines


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM/SIGHUP: unwind, so that every server this run started is stopped.
    raise SystemExit(128 + signum)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="full-sync benchmark against the upstream registrator")
    p.add_argument("--functions", type=int, nargs="+", default=[1000, 10000])
    p.add_argument(
        "--impl",
        nargs="+",
        choices=[*OURS, "upstream", *ALIASES],
        default=[*OURS, "upstream"],
        help="registrators to run (ours = python)",
    )
    p.add_argument(
        "--skip",
        nargs="+",
        default=[],
        metavar="IMPL:N",
        help="leave out one registrator at one size (e.g. upstream:10000)",
    )
    p.add_argument(
        "--env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the registrators (e.g. MAX_CONCURRENCY=16; default: none)",
    )
    p.add_argument(
        "--config-floor",
        type=int,
        metavar="ENTRIES",
        help="also time ENTRIES PUT /v1/config alone on a fresh agent, 1/8/16/32 at once",
    )
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
    return p.parse_args(argv)


def registrators(names: list[str]) -> list[str]:
    """The registrators to run, aliases resolved; upstream only when its binary exists."""
    impls = list(dict.fromkeys(ALIASES.get(i, i) for i in names))
    if "upstream" in impls and sup.upstream_binary() is None:
        log(
            "upstream registrator binary not found (set UPSTREAM_REGISTRATOR_BIN or run "
            "bench/upstream/build.sh); running ours only"
        )
        impls.remove("upstream")
    return impls


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    args = parse_args(argv)
    impls = registrators(args.impl)
    skip = {(ALIASES.get(i, i), int(k)) for i, k in (x.split(":", 1) for x in args.skip)}
    if not impls:
        return 2
    extra_env = dict(e.split("=", 1) for e in args.env)
    load_start = os.getloadavg()[0]
    consul_bin = sup.consul_binary()
    workdir = sup.make_workdir("bench")
    moto = sup.MotoSeeded(workdir).start()
    results = []
    floors = []
    try:
        if args.config_floor:
            for c in (1, 8, 16, 32):
                floors.append(config_floor(consul_bin, workdir, args.config_floor, c))
        for n in args.functions:
            for impl in impls:
                if (impl, n) in skip:
                    log(f"skipping {impl} at N={n}")
                    continue
                results.append(
                    run_one(
                        impl,
                        n,
                        moto,
                        consul_bin,
                        workdir,
                        args.timeout,
                        tuple(args.latency_ms),
                        extra_env,
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
        f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        "moto": moto_pkg.__version__,
        "consul": consul_version,
        "upstream": sup.upstream_binary() if "upstream" in impls else "not run",
        "latency_ms": {"aws": args.latency_ms[0], "consul": args.latency_ms[1]},
        "config_floor": floors,
        "skipped": [f"{i} at N={k:,}" for i, k in sorted(skip) if i in impls],
        "env": extra_env,
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
        log(f"count checks passed for {[i for i in impls if i in OURS]} at N={args.functions}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
