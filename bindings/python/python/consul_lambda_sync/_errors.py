"""Exceptions: one base class, one subclass per family of codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._types import Diagnostic, ErrorCode, Failure


class ConsulLambdaSyncError(Exception):
    """A call the core could not complete.

    The failure the core reported is kept whole in :attr:`details`; its parts are
    attributes: :attr:`code` (a stable snake_case code, see ``ERROR_CODES``),
    :attr:`message`, :attr:`hint`, :attr:`key` and :attr:`value` (the input at
    fault, when one is) and :attr:`errors` (every problem found, as dicts).
    """

    details: Failure
    code: ErrorCode
    message: str
    hint: str
    key: Optional[str]
    value: Optional[str]
    errors: list[Diagnostic]

    def __init__(self, details: Failure) -> None:
        super().__init__(details)
        self.details = details
        self.code = details["code"]
        self.message = details["message"]
        self.hint = details["hint"]
        self.key = details.get("key")
        self.value = details.get("value")
        self.errors = details["errors"]

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigError(ConsulLambdaSyncError):
    """The configuration is invalid (``invalid_config`` and the configuration codes)."""


class InputError(ConsulLambdaSyncError):
    """Input of the wrong shape (``invalid_input``), an AWS or Consul response the
    core cannot read (``invalid_response``), or a malformed ARN or function name."""


class TagError(InputError):
    """Tags or tag options are invalid.

    Raised for the tag codes, and for an ``invalid_input`` failure whose problems
    all have tag codes (``tags_from_options``); it is an :class:`InputError` too.
    """


class EventError(ConsulLambdaSyncError):
    """An event the registrator does not handle (``unsupported_event``) or that
    lacks a field it needs (``invalid_event``)."""


class PlanError(ConsulLambdaSyncError):
    """A problem found while planning (conflicts, ownership, safety limits)."""


# Every code of the core, by family. tests/test_errors.py checks that this table
# has exactly the codes of error_codes(); a code missing here maps to the base class.
_FAMILIES: dict[str, type[ConsulLambdaSyncError]] = {
    # tags
    "invalid_boolean": TagError,
    "invalid_invocation_mode": TagError,
    "empty_alias": TagError,
    "invalid_alias_name": TagError,
    "duplicate_alias": TagError,
    "enterprise_only_tag": TagError,
    "invalid_consul_name": TagError,
    "unknown_tag": TagError,
    "service_name_conflict": TagError,
    # function identity
    "invalid_arn": InputError,
    "invalid_function_name": InputError,
    # configuration
    "invalid_url": ConfigError,
    "invalid_parameter_path": ConfigError,
    "invalid_tier": ConfigError,
    "enterprise_requires_partitions": ConfigError,
    "partitions_require_enterprise": ConfigError,
    "invalid_node_name": ConfigError,
    "invalid_integer": ConfigError,
    "out_of_range": ConfigError,
    "invalid_log_level": ConfigError,
    "invalid_list": ConfigError,
    "inconsistent_settings": ConfigError,
    "invalid_config": ConfigError,
    # events
    "unsupported_event": EventError,
    "invalid_event": EventError,
    # input
    "invalid_input": InputError,
    "invalid_response": InputError,
    # planning
    "unmanaged_service_conflict": PlanError,
    "foreign_config_entry": PlanError,
    "owned_by_other_registrator": PlanError,
    "mass_deregistration_blocked": PlanError,
    "orphan_not_owned": PlanError,
    "inventory_incomplete": PlanError,
    "function_load_failed": PlanError,
    "leaf_missing": PlanError,
    "unsafe_consul_name": PlanError,
    "foreign_function": PlanError,
    "tls_verification_disabled": ConfigError,
    "invalid_kms_key_id": ConfigError,
    "exported_partitions_require_enterprise": ConfigError,
    "mesh_entry_unchanged": PlanError,
    "mesh_item_not_ours": PlanError,
    "mesh_record_full": PlanError,
    # the sync engine (Consul refused or filtered a read)
    "acl_denied": PlanError,
    "acl_filtered": PlanError,
    "plan_stale": PlanError,
    "plan_rejected": PlanError,
    "consul_unreachable": PlanError,
    "aws_unreachable": PlanError,
    "consul_error": PlanError,
    "aws_error": PlanError,
    "setup_failed": ConfigError,
    "extension_data_prefix_overlap": ConfigError,
    "name_on_other_node": PlanError,
    "alias_not_found": PlanError,
    "answer_too_large": PlanError,
    # the Lambda extension: its settings, and the data it reads
    "invalid_upstream": ConfigError,
    "invalid_duration": ConfigError,
    "missing_setting": ConfigError,
    "invalid_extension_data": InputError,
    "unknown_peer": InputError,
}


def error_class(failure: Mapping[str, Any]) -> type[ConsulLambdaSyncError]:
    """The exception class for a failure dict (the base class for an unknown code)."""
    cls = _FAMILIES.get(str(failure.get("code")), ConsulLambdaSyncError)
    if cls is InputError:
        errors = failure.get("errors")
        if (
            isinstance(errors, list)
            and errors
            and all(
                isinstance(e, dict) and _FAMILIES.get(str(e.get("code"))) is TagError
                for e in errors
            )
        ):
            return TagError
    return cls


def failure_error(failure: Mapping[str, Any]) -> ConsulLambdaSyncError:
    """The exception for a failure dict."""
    return error_class(failure)(cast("Failure", dict(failure)))


def input_failure(message: str, hint: str, key: Optional[str] = None) -> Failure:
    """A failure with code ``invalid_input``, made on the Python side."""
    diagnostic: Diagnostic = {"code": "invalid_input", "message": message, "hint": hint}
    failure: Failure = {"code": "invalid_input", "message": message, "hint": hint, "errors": []}
    if key is not None:
        diagnostic["key"] = key
        failure["key"] = key
    failure["errors"] = [diagnostic]
    return failure
