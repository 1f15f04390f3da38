"""The TypedDicts of consul_lambda_sync describe the core's real outputs.

Every vector case's output (and failure) is checked against the declared type
of its function: every key is declared, every required key is present, and
every value has its declared type. A change of the core's shapes fails here.
"""

from __future__ import annotations

import typing
from typing import Any, Literal, Union

import consul_lambda_sync as cls
import pytest
from _support import load, vector_files

OUTPUT_TYPES: dict[str, Any] = {
    "version": str,
    "errorCodes": list[cls.ErrorCodeInfo],
    "configFromEnv": cls.Config,
    "configFromObject": cls.Config,
    "parseTags": cls.TagReport,
    "tagsFromOptions": dict[str, str],
    "evaluateFunction": cls.FunctionReport,
    "classifyEvent": cls.Trigger,
    "plan": cls.Plan,
    "planRequests": list[cls.RequestPreview],
    "lowerOperation": cls.RequestPreview,
    "formatPlan": str,
    "extensionDataParameter": cls.PutParameter,
    "parseGetResources": cls.FunctionPage,
    "parseGetFunction": cls.LambdaFunction,
    "extensionSettings": cls.ExtensionSettings,
    "extensionUpstream": cls.Upstream,
    "extensionTarget": cls.DialTarget,
    "extensionDataRead": cls.ExtensionDataSummary,
    "extensionPeer": cls.PeerData,
    "extensionDataBuild": cls.PutParameter,
}


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def shape_errors(value: Any, tp: Any, path: str = "$") -> list[str]:
    """Where ``value`` does not have type ``tp`` (TypedDict, Literal, Union, List, Dict...)."""
    if tp is Any:
        return []
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null, got {value!r:.80}"]
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: expected {tp.__name__}, got {type(value).__name__}"]
        hints = typing.get_type_hints(tp)
        errors = [f"{path}.{k}: not declared in {tp.__name__}" for k in value if k not in hints]
        errors += [
            f"{path}.{k}: required by {tp.__name__}, absent"
            for k in tp.__required_keys__
            if k not in value
        ]
        for k, v in value.items():
            if k in hints:
                errors += shape_errors(v, hints[k], f"{path}.{k}")
        return errors
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return [] if value in args else [f"{path}: {value!r:.80} is not one of {args}"]
    if origin is Union:
        attempts = [shape_errors(value, a, path) for a in args]
        if any(not a for a in attempts):
            return []
        return [f"{path}: matches no type of {tp}: " + "; ".join(min(attempts, key=len))]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [e for i, v in enumerate(value) for e in shape_errors(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        return [e for k, v in value.items() for e in shape_errors(v, args[1], f"{path}.{k}")]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected int, got {value!r:.80}"]
    if isinstance(tp, type):
        return (
            [] if isinstance(value, tp) else [f"{path}: expected {tp.__name__}, got {value!r:.80}"]
        )
    raise AssertionError(f"the checker does not know {tp}")


def _cases() -> list[Any]:
    params = []
    for path in vector_files():
        doc = load(path)
        for case in doc.get("cases", []):
            params.append(
                pytest.param(doc["function"], case, id=f"{path.stem}/{case.get('name', '?')}")
            )
    return params


@pytest.mark.parametrize(("function", "case"), _cases())
def test_vector_outputs_have_the_declared_shape(function: str, case: dict[str, Any]) -> None:
    try:
        out = cls.call(function, case.get("input"))
    except cls.ConsulLambdaSyncError as exc:
        errors = shape_errors(exc.details, cls.Failure, "$error")
    else:
        errors = shape_errors(out, OUTPUT_TYPES[function])
    assert not errors, "\n".join(errors)


def test_direct_outputs_have_the_declared_shape() -> None:
    enabled = "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled"
    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders"
    checks: list[tuple[Any, Any]] = [
        (cls.version(), str),
        (cls.error_codes(), list[cls.ErrorCodeInfo]),
        (cls.config_from_env({}), cls.Config),
        (
            cls.config_from_object(
                {"consulExtensionDataPrefix": "/lambda", "consulExtensionDataTier": "Advanced"}
            ),
            cls.Config,
        ),
        (
            cls.parse_tags({enabled: "maybe", "serverless.consul.hashicorp.com/x": "1"}),
            cls.TagReport,
        ),
        (cls.tags_from_options({"enabled": True, "aliases": ["live"]}), dict[str, str]),
        (
            cls.evaluate_function(
                {
                    "arn": arn,
                    "tags": {
                        enabled: "true",
                        "serverless.consul.hashicorp.com/v1alpha1/lambda/aliases": "live",
                    },
                }
            ),
            cls.FunctionReport,
        ),
        (cls.classify_event({"source": "aws.events"}), cls.Trigger),
        (
            cls.parse_get_resources(
                {
                    "ResourceTagMappingList": [
                        {"ResourceARN": arn, "Tags": [{"Key": enabled, "Value": "true"}]}
                    ],
                    "PaginationToken": "t",
                }
            ),
            cls.FunctionPage,
        ),
        (
            cls.parse_get_function({"Configuration": {"FunctionArn": arn}, "Tags": {}}),
            cls.LambdaFunction,
        ),
    ]
    for i, (value, tp) in enumerate(checks):
        errors = shape_errors(value, tp, f"${i}")
        assert not errors, "\n".join(errors)


def test_the_checker_catches_drift() -> None:
    assert shape_errors({"create": 1}, cls.PlanSummary)
    assert shape_errors({"kind": "fullSync", "extra": 1}, cls.Trigger)
    assert shape_errors({"kind": "function", "arn": "a"}, cls.Trigger)
    assert not shape_errors({"kind": "function", "arn": "a", "name": "n"}, cls.Trigger)
    assert shape_errors(True, int)
