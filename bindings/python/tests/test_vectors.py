"""Runs every shared test vector (tests/vectors/*.json) through the Python binding."""

from __future__ import annotations

import json
from typing import Any

import consul_lambda_sync as cls
import pytest
from _support import load, subset_errors, vector_files


def _core_functions() -> set[str]:
    """The core's JSON API (ffi::FUNCTIONS), as its unknown-function error lists it."""
    try:
        cls.call("none", None)
    except cls.ConsulLambdaSyncError as exc:
        hint = str(exc.details.get("hint", ""))
        return set(hint.removeprefix("call one of: ").split(", "))
    raise AssertionError("the core accepted an unknown function")


FUNCTIONS = _core_functions()


def _cases() -> list[Any]:
    params = []
    for path in vector_files():
        try:
            doc = load(path)
        except ValueError as exc:  # a broken file is a failing case, not a crash
            params.append(pytest.param(path.name, None, {"broken": str(exc)}, id=path.name))
            continue
        function = doc.get("function")
        for case in doc.get("cases", []):
            name = case.get("name", "?")
            params.append(pytest.param(path.name, function, case, id=f"{path.stem}/{name}"))
    return params


CASES = _cases()


def test_there_are_vectors() -> None:
    assert vector_files(), "no vector files in tests/vectors"
    assert len(CASES) >= len(vector_files())


@pytest.mark.parametrize(("file", "function", "case"), CASES)
def test_vector(file: str, function: Any, case: dict[str, Any]) -> None:
    assert "broken" not in case, f"{file}: not JSON: {case.get('broken')}"
    assert function in FUNCTIONS, f"{file}: unknown function {function!r}"
    has_expected, has_error = "expected" in case, "error" in case
    assert has_expected != has_error, "a case needs exactly one of expected and error"
    # The vector's input goes through json.dumps exactly as a user's dict would.
    failure: cls.ConsulLambdaSyncError | None = None
    out: Any = None
    try:
        out = cls.call(function, case.get("input"))
    except cls.ConsulLambdaSyncError as exc:
        failure = exc
    if failure is not None:
        assert has_error, f"unexpected error {json.dumps(failure.details)}"
        assert isinstance(failure, cls.error_class(failure.details))
        errors = subset_errors(failure.details, case["error"], "$error")
    else:
        assert has_expected, f"expected an error, got {json.dumps(out)}"
        errors = subset_errors(out, case["expected"])
    assert not errors, "\n".join(errors)
