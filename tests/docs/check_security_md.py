#!/usr/bin/env python3
"""SECURITY.md's proofs name tests that exist.

Every "Proof" item of SECURITY.md names files (in backticks) and, after each file, the tests in it:
an identifier in backticks (a test function) or a quoted name (a vector's or a node test's name, a
check's label; `…` stands for a part built at run time). Each file must exist and each name must
occur in the file it follows. `TODO(lead): test name` placeholders and `UNTESTED` marks are counted
and listed, not failed: they say which promises are not proven yet.

Usage: check_security_md.py [SECURITY.md]      Exits 1 when a named file or test is missing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILE = re.compile(r"^[\w./-]+(\.(py|rs|mjs|js|json|sh|md|ts|hcl)|/)$")
TOKEN = re.compile(r"`([^`]+)`|\"((?:[^\"\\]|\\.)*)\"")


def proof_items(text: str) -> list[tuple[int, str]]:
    """(line, text) of each "Proof" bullet, its continuation lines joined."""
    items: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)- Proof\b", lines[i])
        if not m:
            i += 1
            continue
        start, body = i + 1, [lines[i]]
        indent = len(m.group(1))
        i += 1
        while (
            i < len(lines)
            and lines[i].strip()
            and len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            if lines[i].lstrip().startswith("- "):
                break
            body.append(lines[i].strip())
            i += 1
        items.append((start, " ".join(body)))
    return items


def check(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    names = files = 0
    todo: list[str] = []
    for line, item in proof_items(text):
        if "TODO(lead)" in item or "UNTESTED" in item:
            todo.append(f"{path.name}:{line}: {item.strip()[2:]}")
        current: Path | None = None
        body = ""
        for m in TOKEN.finditer(item.split(":", 1)[1] if ":" in item else item):
            tick, quoted = m.group(1), m.group(2)
            if tick is not None and FILE.match(tick):
                current = ROOT / tick
                files += 1
                if not current.exists():
                    problems.append(f"line {line}: no file {tick}")
                    current = None
                else:
                    body = (
                        current.read_text(encoding="utf-8") if current.is_file() else ""
                    )
                continue
            if current is None or not current.is_file():
                continue
            name = tick if tick is not None else quoted
            names += 1
            if tick is not None:
                found = re.search(rf"\b{re.escape(name)}\b", body) is not None
            else:
                found = all(part in body for part in name.split("…"))
            if not found:
                problems.append(
                    f"line {line}: {current.relative_to(ROOT)} has no {name!r}"
                )
    for p in problems:
        print(f"FAILED {p}")
    print(
        f"{path.name}: {files} files and {names} test names checked; {len(todo)} proofs to come:"
    )
    for t in todo:
        print(f"  {t}")
    print(
        f"security-md: {names + files - len(problems)} passed, {len(problems)} failed"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(check(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "SECURITY.md"))
