"""Hostile and malformed input: always a typed exception with a code, never a crash."""

from __future__ import annotations

import contextlib
import gc
import math
import threading
from typing import Any, Callable

import consul_lambda_sync as cls
import pytest
from consul_lambda_sync import _native

ENABLED = "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
TEN_MB = "x" * (10 * 1024 * 1024)


def nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def nested_dicts(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def plan_input(**inventory: Any) -> dict[str, Any]:
    return {"inventory": {"accountId": "123456789012", "region": "us-east-1", **inventory}}


def expect(
    family: type[cls.ConsulLambdaSyncError], code: str, fn: Callable[[], object]
) -> cls.ConsulLambdaSyncError:
    with pytest.raises(cls.ConsulLambdaSyncError) as info:
        fn()
    exc = info.value
    assert isinstance(exc, family), f"{type(exc).__name__}: {exc}"
    assert exc.code == code, str(exc)
    assert exc.message, exc.details
    assert exc.hint, exc.details
    assert exc.errors
    assert all(e["code"] and e["message"] for e in exc.errors)
    assert len(str(exc)) < 2000, "messages stay readable, whatever the input's size"
    return exc


WRONG_TYPES: list[tuple[str, Callable[[], object]]] = [
    ("parse_tags: a list", lambda: cls.parse_tags(["a"])),  # type: ignore[arg-type]
    ("parse_tags: a number value", lambda: cls.parse_tags({ENABLED: 1})),  # type: ignore[dict-item]
    ("parse_tags: None", lambda: cls.parse_tags(None)),  # type: ignore[arg-type]
    ("parse_tags: enterprise as text", lambda: cls.parse_tags({}, "yes")),  # type: ignore[arg-type]
    ("tags_from_options: unknown field", lambda: cls.tags_from_options({"enable": True})),
    ("tags_from_options: aliases as text", lambda: cls.tags_from_options({"aliases": "a+b"})),
    ("evaluate_function: missing arn", lambda: cls.evaluate_function({"tags": {}})),
    ("evaluate_function: arn as number", lambda: cls.evaluate_function({"arn": 5})),
    ("evaluate_function: config as list", lambda: cls.evaluate_function({"arn": ARN}, [])),  # type: ignore[arg-type]
    ("config_from_object: unknown key", lambda: cls.config_from_object({"node_name": "x"})),
    ("config_from_object: page size as text", lambda: cls.config_from_object({"pageSize": "5"})),
    ("config_from_env: a number value", lambda: cls.config_from_env({"PAGE_SIZE": 5})),  # type: ignore[dict-item]
    ("plan: empty", lambda: cls.plan({})),
    ("plan: missing region", lambda: cls.plan({"inventory": {"accountId": "123456789012"}})),
    ("plan: functions as dict", lambda: cls.plan(plan_input(functions={}))),
    ("plan: unknown trigger", lambda: cls.plan({**plan_input(), "trigger": {"kind": "all"}})),
    ("plan: bad account", lambda: cls.plan({"inventory": {"accountId": "1", "region": "r"}})),
    ("plan: a string", lambda: cls.plan("plan")),  # type: ignore[arg-type]
    ("format_plan: not a plan", lambda: cls.format_plan({"operations": 1})),
    ("extension_data_parameter: empty", lambda: cls.extension_data_parameter({})),
    ("parse_get_resources: text", lambda: cls.parse_get_resources("page")),  # type: ignore[arg-type]
    ("parse_get_function: empty", lambda: cls.parse_get_function({})),
    ("call: unknown function", lambda: cls.call("noSuchFunction", {})),
]


@pytest.mark.parametrize(("name", "fn"), WRONG_TYPES, ids=[n for n, _ in WRONG_TYPES])
def test_wrong_types_and_missing_fields(name: str, fn: Callable[[], object]) -> None:
    expect(cls.InputError, "invalid_input", fn)


def test_missing_field_is_named() -> None:
    exc = expect(cls.InputError, "invalid_input", lambda: cls.plan({}))
    assert exc.key == "inventory"
    assert "missing field" in exc.message


def test_a_response_the_core_cannot_read() -> None:
    response = {"Configuration": {"FunctionArn": "not an arn"}}
    expect(cls.InputError, "invalid_response", lambda: cls.parse_get_function(response))


def test_event_of_the_wrong_type() -> None:
    for event in ("text", None, 5, [], True):
        expect(cls.EventError, "unsupported_event", lambda e=event: cls.classify_event(e))


NOT_JSON: list[tuple[str, Any]] = [
    ("set", {1, 2}),
    ("bytes", b"x"),
    ("object", object()),
    ("nan", math.nan),
    ("infinity", math.inf),
    ("tuple key", {(1, 2): "x"}),
    ("function", len),
]


@pytest.mark.parametrize(("name", "value"), NOT_JSON, ids=[n for n, _ in NOT_JSON])
def test_non_serialisable_input_is_an_input_error(name: str, value: Any) -> None:
    expect(cls.InputError, "invalid_input", lambda: cls.classify_event({"source": value}))
    expect(cls.InputError, "invalid_input", lambda: cls.plan(plan_input(functions=[value])))


def test_cycle_is_an_input_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    expect(cls.InputError, "invalid_input", lambda: cls.classify_event(cycle))


def test_lone_surrogate_is_an_input_error() -> None:
    expect(cls.InputError, "invalid_input", lambda: cls.parse_tags({ENABLED: "\ud800"}))


def test_huge_integer_is_an_input_error() -> None:
    expect(cls.InputError, "invalid_input", lambda: cls.config_from_object({"pageSize": 10**100}))
    expect(cls.InputError, "invalid_input", lambda: cls.config_from_object({"pageSize": 2**64}))


@pytest.mark.parametrize("make", [nested_lists, nested_dicts], ids=["lists", "dicts"])
@pytest.mark.parametrize("depth", [200, 100_000])
def test_deep_nesting(make: Callable[[int], Any], depth: int) -> None:
    deep = make(depth)
    exc = expect(cls.InputError, "invalid_input", lambda: cls.classify_event({"detail": deep}))
    assert "nested too deeply" in exc.hint
    expect(cls.InputError, "invalid_input", lambda: cls.plan(plan_input(functions=deep)))
    expect(cls.InputError, "invalid_input", lambda: cls.config_from_object(deep))


def test_ten_megabyte_strings() -> None:
    # A huge value is reported, clipped, never copied whole into the error.
    exc = expect(
        cls.EventError, "unsupported_event", lambda: cls.classify_event({"source": TEN_MB})
    )
    assert exc.value is not None
    assert len(exc.value) < 300
    exc = expect(
        cls.ConfigError, "invalid_config", lambda: cls.config_from_env({"LOG_LEVEL": TEN_MB})
    )
    assert all(len(e.get("value", "")) < 300 for e in exc.errors)
    expect(cls.InputError, "invalid_input", lambda: cls.call("plan", TEN_MB))
    expect(cls.InputError, "invalid_input", lambda: cls.plan(plan_input(accountId=TEN_MB)))
    # As a tag value it is a per-function problem, not a failure.
    report = cls.parse_tags({ENABLED: TEN_MB})
    assert [e["code"] for e in report["errors"]] == ["invalid_boolean"]
    assert len(report["errors"][0].get("value", "")) < 300
    report2 = cls.evaluate_function({"arn": TEN_MB, "tags": {ENABLED: "true"}})
    assert report2["status"] == "invalid"
    assert report2["errors"][0]["code"] == "invalid_arn"


def test_many_functions_with_huge_tags() -> None:
    functions = [
        {"arn": f"{ARN}{i}", "tags": {ENABLED: "true", f"k{i}": "v" * 100_000}} for i in range(100)
    ]
    plan = cls.plan(plan_input(functions=functions))
    assert plan["summary"]["create"] == 100


def test_native_module_directly() -> None:
    with pytest.raises(_native.CoreFailure) as info:
        _native.call("plan", "{not json")
    assert isinstance(info.value, ValueError)
    assert '"code":"invalid_input"' in info.value.args[0]
    assert _native.call("version", "null") == f'"{cls.version()}"'
    with pytest.raises(TypeError):
        _native.call("version", None)  # type: ignore[arg-type]


def test_concurrent_calls_agree() -> None:
    # The core runs without the GIL; results must not depend on interleaving.
    functions = [{"arn": f"{ARN}-{i}", "tags": {ENABLED: "true"}} for i in range(300)]
    want = cls.plan(plan_input(functions=functions))
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(cls.plan(plan_input(functions=functions)))
                with contextlib.suppress(cls.ConfigError):
                    cls.config_from_env({"PAGE_SIZE": "x"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    assert all(r == want for r in results)


def test_large_outputs_leave_the_gc_as_it_was() -> None:
    functions = [{"arn": f"{ARN}-{i}", "tags": {ENABLED: "true"}} for i in range(3000)]
    assert gc.isenabled()
    big = cls.plan(plan_input(functions=functions))  # over 1 MB of JSON: GC paused, then back
    assert big["summary"]["create"] == 3000
    assert gc.isenabled()
    gc.disable()
    try:
        assert cls.plan(plan_input(functions=functions)) == big
        assert not gc.isenabled()
    finally:
        gc.enable()
