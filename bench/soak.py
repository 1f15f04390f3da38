"""Soak: continuous syncs against 1,000 functions with random churn, for an hour.

Not a CI test (it runs for an hour): results go to RELIABILITY.md.

One registrator process (the Lambda host, polling the Lambda Runtime API
emulator as in a warm Lambda sandbox) syncs again and again against a real Consul
dev agent and moto. Before every sync the script changes the world at random:

- Lambda (through moto's API): tag changes (payload passthrough flipped,
  aliases changed, invocation mode changed, disabled, re-enabled), deletions,
  creations of new tagged functions;
- Consul, out of band (as an operator would): a managed service deregistered, a
  service-defaults entry's Lambda arguments edited (drift), an entry deleted,
  and a service of someone else registered on the registrator's node.

After every sync it checks, reading Consul directly:

- no wrongful deregistration: every service that was both registered before the
  sync and still wanted is still registered;
- converged: Consul holds exactly what the tags ask for (cls_support.compare);
- the foreign service on the node is untouched.

It samples the registrator's resident set (VmRSS) after each sync and prints the
curve: one line per minute, and the growth after the warm-up (default 5 min).

    .venv/bin/python bench/soak.py --minutes 60 --functions 1000 [--impl python|node]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import cls_support as sup

PREFIX = sup.PREFIX
ALIASES = ("prod", "staging", "dev", "blue")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class World:
    """Random changes to Lambda (through moto's API) and to Consul (out of band)."""

    def __init__(self, moto_url: str, consul: sup.ConsulClient, rng: random.Random) -> None:
        args: dict[str, Any] = {
            "endpoint_url": moto_url,
            "region_name": sup.REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.lam = boto3.client("lambda", **args)
        self.consul = consul
        self.rng = rng
        self.created = 0
        self.counts: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def functions(self) -> list[str]:
        names: list[str] = []
        for page in self.lam.get_paginator("list_functions").paginate():
            names += [f["FunctionName"] for f in page["Functions"]]
        return names

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{sup.REGION}:{sup.ACCOUNT}:function:{name}"

    def lambda_churn(self, names: list[str], changes: int) -> None:
        rng = self.rng
        for name in rng.sample(names, min(changes, len(names))):
            arn = self.arn(name)
            kind = rng.choice(["payload", "aliases", "mode", "disable", "enable", "delete"])
            if kind == "payload":
                value = rng.choice(["true", "false"])
                self.lam.tag_resource(Resource=arn, Tags={PREFIX + "payload-passthrough": value})
            elif kind == "aliases":
                chosen = rng.sample(ALIASES, rng.randint(0, 3))
                if chosen:
                    tags = {PREFIX + "aliases": "+".join(chosen)}
                    self.lam.tag_resource(Resource=arn, Tags=tags)
                    sup.create_aliases(self.lam, arn.rsplit(":", 1)[1], tags)
                else:
                    self.lam.untag_resource(Resource=arn, TagKeys=[PREFIX + "aliases"])
            elif kind == "mode":
                mode = rng.choice(["SYNCHRONOUS", "ASYNCHRONOUS", "asynchronous"])
                self.lam.tag_resource(Resource=arn, Tags={PREFIX + "invocation-mode": mode})
            elif kind == "disable":
                self.lam.tag_resource(Resource=arn, Tags={PREFIX + "enabled": "false"})
            elif kind == "enable":
                self.lam.tag_resource(Resource=arn, Tags={PREFIX + "enabled": "true"})
            else:
                self.lam.delete_function(FunctionName=name)
                self.create()  # keep the population about constant
            self._count(kind)

    def create(self) -> None:
        self.created += 1
        tags = {PREFIX + "enabled": "true", "team": "soak"}
        if self.rng.random() < 0.5:
            tags[PREFIX + "aliases"] = "+".join(self.rng.sample(ALIASES, self.rng.randint(1, 2)))
        self.lam.create_function(
            FunctionName=f"soak-{self.created:06d}",
            Runtime="python3.12",
            Role=f"arn:aws:iam::{sup.ACCOUNT}:role/bench-fn",
            Handler="index.handler",
            Code={"ZipFile": sup.function_zip()},
            Tags=tags,
        )
        sup.create_aliases(self.lam, f"soak-{self.created:06d}", tags)
        self._count("create")

    def consul_churn(self, wanted: set[str], edits: int) -> None:
        """Out-of-band edits the next sync must repair, on wanted services only: an
        edit of an unwanted one can leave an object that is no longer provably
        ours, which a sync rightly leaves alone (docs/contract.md §5.3)."""
        rng = self.rng
        targets = sorted(wanted & set(self.consul.managed_services()))
        entries = self.consul.entries()
        for _ in range(edits):
            if not targets:
                return
            name = rng.choice(targets)
            kind = rng.choice(["deregister", "drift", "entry-delete"])
            if kind == "deregister":
                self.consul.put("/v1/catalog/deregister", {"Node": sup.NODE, "ServiceID": name})
            elif kind == "drift" and name in entries:
                entry = dict(entries[name])
                for ext in entry.get("EnvoyExtensions") or []:
                    if ext.get("Name") == "builtin/aws/lambda":
                        ext["Arguments"]["PayloadPassthrough"] = not ext["Arguments"].get(
                            "PayloadPassthrough", False
                        )
                entry.pop("ModifyIndex", None)
                entry.pop("CreateIndex", None)
                self.consul.put("/v1/config", entry)
            elif name in entries:
                self.consul.delete(f"/v1/config/service-defaults/{name}")
            self._count("consul-" + kind)


def checked_sync(
    reg: sup.Registrator, consul: sup.ConsulClient, moto: sup.MotoSeeded, n: int
) -> tuple[list[str], dict[str, Any]]:
    """One sync, then the checks; returns (failures, sample)."""
    wanted = set(moto.desired())
    before = set(consul.managed_services())
    t0 = time.monotonic()
    result, cpu = reg.invoke(sup.schedule_event(), timeout=600)
    elapsed = time.monotonic() - t0
    after = set(consul.managed_services())
    check = sup.compare(consul, moto.desired())
    failures = []
    if not (result.ok and result.response and result.response.get("ok")):
        failures.append(f"sync {n}: {json.dumps(result.error or result.response)[:300]}")
    wrongful = sorted((before & wanted) - after)
    if wrongful:
        failures.append(f"sync {n}: wrongly deregistered {wrongful[:5]}")
    if not check["converged"]:
        failures.append(f"sync {n}: not converged {check}")
    if "foreign" not in consul.services():
        failures.append(f"sync {n}: the foreign service is gone")
    sample = {
        "sync": n,
        "rss_mb": round(rss_mb(reg.proc.pid), 1) if reg.proc else 0.0,
        "seconds": round(elapsed, 3),
        "cpu": round(cpu, 3),
        "services": len(after),
    }
    return failures, sample


def growth_pct(samples: list[dict[str, Any]], warmup: float) -> float | None:
    """RSS growth after the warm-up: the mean of the last 5% of samples against
    the mean of the first 5% after the warm-up."""
    warm = [s for s in samples if s["minute"] >= warmup]
    if len(warm) < 2:
        return None
    k = max(1, len(warm) // 20)
    first = sum(float(s["rss_mb"]) for s in warm[:k]) / k
    last = sum(float(s["rss_mb"]) for s in warm[-k:]) / k
    return round((last - first) / first * 100, 2)


def soak(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], list[str], World]:
    moto = sup.MotoSeeded(work).start()
    agent = sup.ConsulAgent(sup.consul_binary(), work / "consul").start()
    consul: sup.ConsulClient = agent
    runtime = sup.RuntimeAPI()
    reg = sup.Registrator(args.impl, runtime, agent.addr, moto.url, work)
    world = World(moto.url, consul, random.Random(args.seed))
    samples: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        moto.seed(args.functions)
        # Someone else's service on the registrator's node: never ours to touch.
        consul.put(
            "/v1/catalog/register",
            {
                "Node": sup.NODE,
                "Address": "lambdas.internal",
                "Service": {"ID": "foreign", "Service": "foreign", "Port": 80},
            },
        )
        reg.start()
        start = time.monotonic()
        last_minute = -1
        while time.monotonic() - start < args.minutes * 60 and len(failures) <= 20:
            if samples:
                world.lambda_churn(world.functions(), args.changes)
                world.consul_churn(set(moto.desired()), args.edits)
            failed, sample = checked_sync(reg, consul, moto, len(samples) + 1)
            failures += failed
            sample["minute"] = round((time.monotonic() - start) / 60, 2)
            samples.append(sample)
            if int(sample["minute"]) != last_minute:
                last_minute = int(sample["minute"])
                print(
                    f"min {last_minute:3d}  sync {sample['sync']:5d}  "
                    f"rss {sample['rss_mb']:7.1f} MiB  services {sample['services']:5d}  "
                    f"sync {sample['seconds']:6.2f} s  "
                    f"failures {len(failures)}",
                    flush=True,
                )
    finally:
        reg.stop()
        runtime.close()
        agent.stop()
        moto.stop()
    return samples, failures, world


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--functions", type=int, default=1000)
    ap.add_argument("--impl", default="python", choices=["python", "node"])
    ap.add_argument("--warmup-minutes", type=float, default=5)
    ap.add_argument("--changes", type=int, default=20, help="Lambda changes before each sync")
    ap.add_argument("--edits", type=int, default=3, help="out-of-band Consul edits per sync")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="target/soak/results.json")
    args = ap.parse_args()

    samples, failures, world = soak(args, Path(tempfile.mkdtemp(prefix="cls-soak-")))
    growth = growth_pct(samples, args.warmup_minutes)
    warm = [s for s in samples if s["minute"] >= args.warmup_minutes]
    summary = {
        "impl": args.impl,
        "functions": args.functions,
        "minutes": args.minutes,
        "syncs": len(samples),
        "failures": failures,
        "churn": world.counts,
        "rss_warm_start_mb": warm[0]["rss_mb"] if warm else None,
        "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_max_mb": max((s["rss_mb"] for s in samples), default=None),
        "rss_growth_after_warmup_pct": growth,
        "samples": samples,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=1))
    ok = not failures and growth is not None and growth <= 10
    print("soak:", "PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
