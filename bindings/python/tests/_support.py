"""Shared helpers for the binding's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "tests" / "vectors"


def vector_files() -> list[Path]:
    """Every shared vector file, sorted (the same set the Rust runner reads)."""
    return sorted(p for p in VECTORS.glob("*.json") if p.is_file())


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def subset_errors(
    actual: Any, expected: Any, path: str = "$", *, present: bool = True
) -> list[str]:
    """Where ``actual`` does not contain ``expected`` (tests/vectors/README.md).

    The same rules as core/tests/vectors.rs: every key of an expected object must
    match in the actual object; an expected array matches an actual array of the
    same length element by element; numbers compare as floats; other scalars must
    be equal and of the same JSON type; an expected null matches an absent key or
    null. ``present`` is False when the key is absent from the actual object.
    """
    if expected is None:
        if not present or actual is None:
            return []
        return [f"{path}: expected null, got {json.dumps(actual)}"]
    if not present:
        return [f"{path}: expected {json.dumps(expected)}, got nothing"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        errors: list[str] = []
        for k, v in expected.items():
            errors += subset_errors(actual.get(k), v, f"{path}.{k}", present=k in actual)
        return errors
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [
                f"{path}: expected {len(expected)} items, got {len(actual)}: {json.dumps(actual)}"
            ]
        errors = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            errors += subset_errors(a, e, f"{path}[{i}]")
        return errors
    if _is_number(expected) and _is_number(actual) and float(expected) == float(actual):
        return []
    same_type = type(expected) is type(actual) or (_is_number(expected) and _is_number(actual))
    if same_type and not isinstance(expected, (dict, list)) and expected == actual:
        return []
    return [f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
