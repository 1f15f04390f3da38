"""tests/typed_usage.py (the mypy --strict example) also holds at run time."""

from __future__ import annotations

import typed_usage


def test_typed_usage_runs() -> None:
    typed_usage.main()
