#!/usr/bin/env python3
"""Checks what a Lambda zip of the Python host holds (scripts/build-lambda-zip.sh).

The zip ships only what the host imports: the consul-lambda-sync package (the Rust core and
``consul_lambda_sync.host``) and its dist-info, nothing else at the top level. The host reaches
Consul over ``http.client`` and AWS through the runtime's boto3, so ``requests`` and its
dependencies (urllib3, certifi, idna, charset_normalizer) must not be in it, nor console
scripts or bytecode.

With ``--with-boto3 LOCK`` the zip may also hold exactly the distributions pinned in LOCK
(scripts/requirements/lambda-boto3.txt), each at its pinned version, with the top-level
names its RECORD lists.

Usage: check_lambda_zip.py ZIP [--with-boto3 LOCK]
Prints one "ok"/"not ok" line per check and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import PurePosixPath

PACKAGE = "consul_lambda_sync"
# Installed by earlier zips though nothing imports them (issue 24); never again.
NEVER = ("requests", "urllib3", "certifi", "idna", "charset_normalizer")


def normalize(name: str) -> str:
    """A distribution name as dist-info folders spell it (PEP 503, then `-` as `_`)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def locked(lock: str) -> dict[str, str]:
    """`name==version` lines of a pip-compile lock, by normalised name."""
    pins: dict[str, str] = {}
    with open(lock, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
            if m:
                pins[normalize(m.group(1))] = m.group(2)
    return pins


class Zip:
    def __init__(self, path: str) -> None:
        self.zip = zipfile.ZipFile(path)
        self.names = self.zip.namelist()
        self.top = {PurePosixPath(n).parts[0] for n in self.names}
        self.dist_infos = {t for t in self.top if t.endswith(".dist-info")}
        ours = sorted(d for d in self.dist_infos if d.startswith(f"{PACKAGE}-"))
        self.ours = ours
        self.version = (
            ours[0][len(PACKAGE) + 1 : -len(".dist-info")] if len(ours) == 1 else "?"
        )

    def tops_of(self, dist_info: str) -> set[str]:
        """The top-level names a distribution installed (its RECORD), less ../bin and caches."""
        record = self.zip.read(f"{dist_info}/RECORD").decode()
        paths = (
            PurePosixPath(line.split(",")[0]) for line in record.splitlines() if line
        )
        return {p.parts[0] for p in paths} - {"..", "__pycache__"}

    def hard_requirements(self) -> list[str]:
        """Requires-Dist lines of the package outside its extras."""
        meta = self.zip.read(f"{PACKAGE}-{self.version}.dist-info/METADATA").decode()
        return [
            line
            for line in meta.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]


def unpinned(z: Zip, pins: dict[str, str]) -> str:
    """Bundled distributions not in the lock at their pinned version, and pins not bundled."""
    bad = []
    for d in sorted(z.dist_infos - set(z.ours)):
        name, _, version = d[: -len(".dist-info")].rpartition("-")
        if pins.get(normalize(name)) != version:
            bad.append(f"{d} (lock: {pins.get(normalize(name))})")
    bad += [
        f"missing {k}=={v}"
        for k, v in pins.items()
        if f"{k}-{v}.dist-info" not in z.dist_infos
    ]
    return "; ".join(bad)


def checks(z: Zip, pins: dict[str, str]) -> list[tuple[str, str]]:
    """(check, problem) pairs; an empty problem is a pass."""
    expected = {PACKAGE, f"{PACKAGE}-{z.version}.dist-info"}
    expected |= {f"{name}-{version}.dist-info" for name, version in pins.items()}
    for d in z.dist_infos & expected - set(z.ours):
        expected |= z.tops_of(d)
    # urllib3 is botocore's dependency: only in a --with-boto3 zip, at its pinned version.
    never = [n for n in NEVER if not (pins and n == "urllib3")]
    what = (
        f"the package and the {len(pins)} distributions of the lock"
        if pins
        else "the package"
    )
    out = [
        (
            f"one {PACKAGE} dist-info (version {z.version})",
            "" if len(z.ours) == 1 else f"{z.ours}",
        ),
        (
            f"exactly the expected top-level entries ({what})",
            ""
            if z.top == expected
            else f"unexpected {sorted(z.top - expected)}; missing {sorted(expected - z.top)}",
        ),
        (
            f"none of {', '.join(never)}",
            ", ".join(sorted(t for t in z.top if normalize(t.split("-")[0]) in never)),
        ),
    ]
    if pins:
        out += [
            (
                "every bundled distribution is in the lock at its pinned version",
                unpinned(z, pins),
            ),
            (
                "boto3 comes from the zip",
                "" if "boto3/__init__.py" in z.names else "no boto3",
            ),
        ]
    else:
        aws = sorted(
            t for t in z.top if t.startswith(("boto3", "botocore", "s3transfer"))
        )
        out.append(("no boto3 or botocore (the runtime provides them)", ", ".join(aws)))
    handler = f"{PACKAGE}/host/handler.py"
    native = [x for x in z.names if re.fullmatch(rf"{PACKAGE}/_native[^/]*\.so", x)]
    junk = [
        x
        for x in z.names
        if x.startswith("bin/") or "__pycache__" in x or x.endswith(".pyc")
    ]
    out += [
        (f"the handler: {handler}", "" if handler in z.names else "missing"),
        ("the core's extension module", "" if native else "missing"),
        ("no console scripts, bytecode or caches", ", ".join(junk)),
        (
            f"{PACKAGE} requires nothing outside its extras",
            ", ".join(z.hard_requirements()),
        ),
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("zip")
    parser.add_argument(
        "--with-boto3", metavar="LOCK", help="the lock of the bundled boto3"
    )
    args = parser.parse_args()
    results = checks(Zip(args.zip), locked(args.with_boto3) if args.with_boto3 else {})
    for i, (name, problem) in enumerate(results, 1):
        print(f"not ok {i} - {name}\n  # {problem}" if problem else f"ok {i} - {name}")
    failed = sum(1 for _, problem in results if problem)
    print(f"1..{len(results)}")
    print(f"# {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
