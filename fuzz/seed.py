#!/usr/bin/env python3
"""Writes a seed corpus for each fuzz target from the shared test vectors.

Usage: python3 fuzz/seed.py  (writes fuzz/corpus/<target>/seed-*; the corpus is gitignored)
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
VECTORS = ROOT.parent / "tests" / "vectors"
TARGETS = {
    "tags": {"parseTags", "tagsFromOptions", "evaluateFunction"},
    "config": {"configFromEnv", "configFromObject"},
    "event": {"classifyEvent"},
    "plan": {"plan"},
}
PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"


def lines(mapping, strip=""):
    out = []
    for k, v in mapping.items():
        if strip and k.startswith(strip):
            k = "~" + k[len(strip):]
        out.append(f"{k}={v}")
    return "\n".join(out)


def main():
    seeds = {t: set() for t in TARGETS}
    for path in sorted(VECTORS.glob("*.json")):
        doc = json.loads(path.read_text())
        for target, functions in TARGETS.items():
            if doc.get("function") not in functions:
                continue
            for case in doc.get("cases", []):
                inp = case.get("input")
                seeds[target].add(json.dumps(inp, separators=(",", ":")))
                if target == "tags" and isinstance(inp, dict):
                    tags = inp.get("tags") or (inp.get("function") or {}).get("tags")
                    if isinstance(tags, dict):
                        seeds[target].add(lines(tags, PREFIX))
                if target == "config" and doc["function"] == "configFromEnv" and isinstance(inp, dict):
                    seeds[target].add(lines(inp))
                if target == "event" and isinstance(inp, dict) and isinstance(inp.get("detail"), dict):
                    seeds[target].add(json.dumps(inp["detail"], separators=(",", ":")))
    for target, items in seeds.items():
        d = ROOT / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(sorted(items)):
            (d / f"seed-{i:04d}").write_text(s)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
