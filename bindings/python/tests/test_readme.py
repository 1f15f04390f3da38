"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """The README's python blocks, each padded so tracebacks name README lines."""
    text = README.read_text(encoding="utf-8")
    return [
        "\n" * text.count("\n", 0, m.start(1)) + m.group(1)
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S)
    ]


def test_readme_has_one_quick_start_block() -> None:
    assert len(python_blocks()) == 1


def test_quick_start_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(python_blocks()[0], str(README), "exec")
    exec(code, {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "orders-live" in out, out
    assert "[invalid_config]" in out, out
