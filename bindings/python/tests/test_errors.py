"""Error codes and exceptions: the Python list, the family table and the core agree."""

from __future__ import annotations

import pickle
import typing

import consul_lambda_sync as cls
import pytest
from consul_lambda_sync import _errors


def test_error_codes_literal_matches_the_core() -> None:
    # pydantic-core style: the Literal is the one list a type checker sees; it must
    # be exactly the core's list, in the core's order.
    core = [c["code"] for c in cls.error_codes()]
    assert list(typing.get_args(cls.ERROR_CODES)) == core
    assert typing.get_args(cls.ErrorCode) == typing.get_args(cls.ERROR_CODES)


def test_every_code_is_described_and_snake_case() -> None:
    for info in cls.error_codes():
        assert set(info) == {"code", "description"}
        assert info["description"].strip(), info
        assert info["code"].replace("_", "").isalpha()
        assert info["code"].islower()


def test_every_code_has_an_exception_family() -> None:
    assert set(_errors._FAMILIES) == {c["code"] for c in cls.error_codes()}


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("invalid_config", cls.ConfigError),
        ("invalid_url", cls.ConfigError),
        ("invalid_alias_name", cls.TagError),
        ("unsupported_event", cls.EventError),
        ("invalid_event", cls.EventError),
        ("invalid_input", cls.InputError),
        ("invalid_response", cls.InputError),
        ("mass_deregistration_blocked", cls.PlanError),
        ("a_code_from_the_future", cls.ConsulLambdaSyncError),
    ],
)
def test_family_by_code(code: str, family: type) -> None:
    assert cls.error_class({"code": code, "errors": []}) is family


def test_the_base_class_catches_every_family() -> None:
    for family in (cls.ConfigError, cls.TagError, cls.EventError, cls.InputError, cls.PlanError):
        assert issubclass(family, cls.ConsulLambdaSyncError)
    assert issubclass(cls.TagError, cls.InputError)


def test_config_error_carries_every_problem() -> None:
    with pytest.raises(cls.ConfigError) as info:
        cls.config_from_env({"PAGE_SIZE": "ten", "LOG_LEVEL": "loud", "CONSUL_HTTP_ADDR": "::"})
    exc = info.value
    assert exc.code == "invalid_config"
    assert len(exc.errors) == 3
    assert {e["key"] for e in exc.errors} == {"PAGE_SIZE", "LOG_LEVEL", "CONSUL_HTTP_ADDR"}
    assert exc.details["errors"] == exc.errors
    assert exc.hint
    assert exc.message
    assert str(exc).startswith("[invalid_config] ")


def test_single_problem_names_key_and_value() -> None:
    with pytest.raises(cls.ConfigError) as info:
        cls.config_from_env({"PAGE_SIZE": "ten"})
    exc = info.value
    assert exc.key == "PAGE_SIZE"
    assert exc.value == "ten"
    assert str(exc) == f"[invalid_config] {exc.message} ({exc.hint})"
    assert exc.errors[0]["code"] == "invalid_integer"


def test_tag_options_failure_is_a_tag_error() -> None:
    with pytest.raises(cls.TagError) as info:
        cls.tags_from_options({"aliases": ["live", "live"]})
    assert info.value.code == "invalid_input"
    assert [e["code"] for e in info.value.errors] == ["duplicate_alias"]
    assert isinstance(info.value, cls.InputError)


def test_event_error() -> None:
    with pytest.raises(cls.EventError) as info:
        cls.classify_event({"source": "aws.s3", "detail-type": "Object Created"})
    assert info.value.code == "unsupported_event"
    assert info.value.key == "source"
    assert info.value.value == "aws.s3"


def test_exceptions_pickle_and_repr() -> None:
    with pytest.raises(cls.ConsulLambdaSyncError) as info:
        cls.config_from_env({"PAGE_SIZE": "ten"})
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is cls.ConfigError
    assert again.details == info.value.details
    assert str(again) == str(info.value)
    assert repr(again).startswith("ConfigError(code='invalid_config'")


def test_str_without_hint() -> None:
    exc = cls.ConsulLambdaSyncError(
        {"code": "invalid_input", "message": "m", "hint": "", "errors": []}
    )
    assert str(exc) == "[invalid_input] m"
    assert exc.key is None
    assert exc.value is None
