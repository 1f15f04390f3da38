"""consul-lambda-sync: keeps tagged AWS Lambda functions registered in Consul.

This package is the pure core (written in Rust) as plain Python functions: each
takes and returns dicts, lists and strings in the core's one JSON shape (camelCase
keys), and raises a :class:`ConsulLambdaSyncError` subclass carrying a stable
``code`` when the core reports a failure. Nothing here does I/O; the Lambda host
(``consul_lambda_sync.host``) sends the requests a plan lists.

>>> import consul_lambda_sync as cls
>>> cls.parse_tags({"serverless.consul.hashicorp.com/v1alpha1/lambda/enabled": "true"})[
...     "settings"]["enabled"]
True
"""

from __future__ import annotations

import gc
import json
import os
from typing import TYPE_CHECKING, Any, Optional, TypedDict, Union, cast

from . import _native
from ._errors import (
    ConfigError,
    ConsulLambdaSyncError,
    EventError,
    InputError,
    PlanError,
    TagError,
    error_class,
    failure_error,
    input_failure,
)
from ._types import (
    Answer,
    Change,
    Check,
    CheckStatus,
    Config,
    ConfigInput,
    Confirmation,
    Diagnostic,
    DialTarget,
    DoctorReport,
    ErrorCode,
    ErrorCodeInfo,
    ExtensionDataInput,
    ExtensionDataSummary,
    ExtensionSettings,
    Failure,
    FullSyncTrigger,
    FunctionName,
    FunctionPage,
    FunctionReport,
    FunctionStatus,
    FunctionTrigger,
    Ignored,
    IgnoreTrigger,
    InvocationMode,
    LambdaArgs,
    LambdaFunction,
    LambdaFunctionInput,
    LogLevel,
    LowerInput,
    Operation,
    OperationKind,
    PeerData,
    PeerInput,
    Plan,
    PlanInput,
    PutParameter,
    RequestPreview,
    ServiceChange,
    ServiceKey,
    ServiceTarget,
    Skip,
    Start,
    Step,
    Summary,
    SyncResult,
    TagOptions,
    TagReport,
    TagSettings,
    TargetInput,
    Tier,
    Trigger,
    Upstream,
)
from ._types import ErrorCode as ERROR_CODES  # the Literal of every code, by its older name
from ._types import Summary as PlanSummary  # the older name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

LARGE_BODY_BYTES: int = _native.LARGE_BODY_BYTES
"""A Consul answer body longer than this is kept as the bytes read and fed with
them (:class:`BytesAnswer`): the core decides the threshold for every host."""


class BytesAnswer(TypedDict):
    """A Consul answer whose body stays the bytes read (an :class:`Answer` otherwise):
    :meth:`Engine.feed` hands it to the core without decoding it into a ``str`` or
    escaping it into the answers' JSON."""

    id: int
    status: int
    headers: dict[str, str]
    body: Union[bytes, bytearray]


__all__ = [
    "ERROR_CODES",
    "LARGE_BODY_BYTES",
    "Answer",
    "BytesAnswer",
    "Change",
    "Check",
    "CheckStatus",
    "Config",
    "ConfigError",
    "ConfigInput",
    "Confirmation",
    "ConsulLambdaSyncError",
    "Diagnostic",
    "DialTarget",
    "DoctorReport",
    "Engine",
    "ErrorCode",
    "ErrorCodeInfo",
    "EventError",
    "ExtensionDataInput",
    "ExtensionDataSummary",
    "ExtensionSettings",
    "Failure",
    "FullSyncTrigger",
    "FunctionName",
    "FunctionPage",
    "FunctionReport",
    "FunctionStatus",
    "FunctionTrigger",
    "IgnoreTrigger",
    "Ignored",
    "InputError",
    "InvocationMode",
    "LambdaArgs",
    "LambdaFunction",
    "LambdaFunctionInput",
    "LogLevel",
    "LowerInput",
    "Operation",
    "OperationKind",
    "PeerData",
    "PeerInput",
    "Plan",
    "PlanError",
    "PlanInput",
    "PlanSummary",
    "PutParameter",
    "RequestPreview",
    "ServiceChange",
    "ServiceKey",
    "ServiceTarget",
    "Skip",
    "Start",
    "Step",
    "Summary",
    "SyncResult",
    "TagError",
    "TagOptions",
    "TagReport",
    "TagSettings",
    "TargetInput",
    "Tier",
    "Trigger",
    "Upstream",
    "call",
    "classify_event",
    "config_from_env",
    "config_from_object",
    "error_class",
    "error_codes",
    "evaluate_function",
    "extension_data_build",
    "extension_data_parameter",
    "extension_data_read",
    "extension_peer",
    "extension_settings",
    "extension_target",
    "extension_upstream",
    "format_plan",
    "lower_operation",
    "parse_get_function",
    "parse_get_resources",
    "parse_tags",
    "plan",
    "plan_requests",
    "tags_from_options",
    "version",
]

# Raised by json.dumps for input it cannot write: TypeError (a set, bytes, an
# object), ValueError (NaN or infinity, a cycle), RecursionError (nesting too deep).
_UNWRITABLE: tuple[type[Exception], ...] = (TypeError, ValueError, OverflowError)

_NOT_JSON_HINT = (
    "pass only dicts with string keys, lists, str, int, float (finite), bool and None; "
    "no cycles, and no deeper nesting than the core accepts (128 levels)"
)


def _dumps(what: str, value: Any) -> str:
    """``json.dumps`` for the core, with the core's error for unwritable input."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        raise InputError(
            input_failure(
                f"{what} is nested too deeply to encode as JSON",
                "the input is nested too deeply; the core reads at most 128 levels",
            )
        ) from None
    except _UNWRITABLE as exc:
        raise InputError(input_failure(f"{what} is not JSON: {exc}", _NOT_JSON_HINT)) from None


class Engine:
    """The sync engine: one invocation of the registrator, driven sans-IO.

    ``Engine(start)`` takes the start dict of ``docs/engine.md``; :meth:`next`
    returns the next step (requests to carry, a sleep, or the result, plus log
    records); :meth:`feed` takes the answers to the last step's requests. The
    engine does no I/O and reads no clock: the host passes the time in.
    """

    def __init__(self, start: Mapping[str, Any]) -> None:
        try:
            self._native = _native.Engine(_dumps("engine start", start))
        except _native.CoreFailure as exc:
            raise _error_from_native(exc) from None

    def next(self, now_ms: float, remaining_ms: Optional[float] = None) -> Step:
        """The next step; ``now_ms``: a monotonic clock; ``remaining_ms``: the Lambda time left."""
        return cast("Step", _loads(self._native.next(now_ms, remaining_ms)))

    def feed(self, answers: Sequence[Union[Answer, BytesAnswer]], now_ms: float) -> None:
        """Feeds the answers to the last step's requests (any order); ``now_ms``: the
        same monotonic clock as :meth:`next`, when the answers were all in.

        A body given as bytes, or a text body over :data:`LARGE_BODY_BYTES`, goes to
        the core on its own, as bytes (a large body inside the answers' JSON would be
        escaped and copied again)."""
        small: list[Answer] = []
        try:
            for a in answers:
                body = a.get("body")
                if isinstance(body, (bytes, bytearray)) or (
                    isinstance(body, str) and len(body) > LARGE_BODY_BYTES
                ):
                    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
                    headers = _dumps("headers", a.get("headers") or {})
                    status = a.get("status") or 0
                    self._native.feed_body(a["id"], status, headers, raw, now_ms)
                else:
                    small.append(cast("Answer", a))
            self._native.feed(_dumps("answers", small), now_ms)
        except _native.CoreFailure as exc:
            raise _error_from_native(exc) from None

    def feed_chunk(self, id: int, chunk: bytes) -> None:
        """Takes the next bytes of a Consul answer's body while it is still being read
        (request ``id`` of the last step), so the host never holds a large body whole;
        the answer given to :meth:`feed` then carries the bytes left as its ``body``
        (``bytes``, possibly empty). The chunks of a request that ends another way (an
        error) are dropped at the next :meth:`next`."""
        self._native.feed_chunk(id, chunk)


def call(function: str, input: Any) -> Any:
    """Calls the core's JSON API by its camelCase function name.

    ``input`` is anything :func:`json.dumps` can write; the output is what
    :func:`json.loads` reads from the core's answer. The named functions of this
    module are the typed way in; this is the one they all use.
    """
    text = _dumps(f"{function} input", input)
    try:
        out = _native.call(function, text)
    except _native.CoreFailure as exc:
        raise _error_from_native(exc) from None
    return _loads(out)


# Outputs from this size on are read with the cyclic garbage collector paused.
_GC_PAUSE_CHARS = 1 << 20


def _loads(text: str) -> Any:
    """``json.loads``, pausing the cyclic GC for large outputs.

    Reading a large plan allocates hundreds of thousands of dicts and lists, and
    each allocation burst runs a collection that walks every live container of
    the process: with the GC running, reading a 20 MB plan is about 8 times
    slower (see bench/bench_plan.py). Parsed JSON holds no reference cycles, so
    pausing the GC skips no garbage; collections resume right after.
    """
    if len(text) < _GC_PAUSE_CHARS or not gc.isenabled():
        return json.loads(text)
    gc.disable()
    try:
        return json.loads(text)
    finally:
        gc.enable()


def _error_from_native(exc: BaseException) -> ConsulLambdaSyncError:
    text = exc.args[0] if exc.args else ""
    try:
        failure = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        failure = None
    if not isinstance(failure, dict) or not isinstance(failure.get("code"), str):
        return ConsulLambdaSyncError(
            input_failure(f"unreadable failure from the core: {text!r:.200}", "report this bug")
        )
    failure.setdefault("message", "")
    failure.setdefault("hint", "")
    failure.setdefault("errors", [])
    return failure_error(failure)


def version() -> str:
    """The core's version."""
    return cast("str", call("version", None))


def error_codes() -> list[ErrorCodeInfo]:
    """Every stable problem code, with one line describing when it is used."""
    return cast("list[ErrorCodeInfo]", call("errorCodes", None))


def config_from_env(env: Optional[Mapping[str, str]] = None) -> Config:
    """Reads and validates the configuration from environment variables.

    ``env`` defaults to :data:`os.environ`. Raises :class:`ConfigError` listing
    every problem in ``errors``.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    return cast("Config", call("configFromEnv", dict(source)))


def config_from_object(obj: Mapping[str, Any]) -> Config:
    """Validates a typed configuration object (camelCase keys, see :class:`ConfigInput`)."""
    return cast("Config", call("configFromObject", obj))


def parse_tags(tags: Mapping[str, str], enterprise: bool = False) -> TagReport:
    """Reads a function's tags: its settings, errors and warnings."""
    return cast("TagReport", call("parseTags", {"tags": tags, "enterprise": enterprise}))


def tags_from_options(options: Mapping[str, Any], enterprise: bool = False) -> dict[str, str]:
    """The tags that ask for ``options`` (see :class:`TagOptions`).

    Raises :class:`TagError` (an :class:`InputError`) when an option is invalid.
    """
    return cast(
        "dict[str, str]", call("tagsFromOptions", {"options": options, "enterprise": enterprise})
    )


def evaluate_function(
    function: Mapping[str, Any], config: Optional[Mapping[str, Any]] = None
) -> FunctionReport:
    """What the registrator does with one function (``{"arn", "name"?, "tags"}``)
    under ``config`` (a :class:`ConfigInput`; defaults apply when omitted)."""
    payload: dict[str, Any] = {"function": function}
    if config is not None:
        payload["config"] = config
    return cast("FunctionReport", call("evaluateFunction", payload))


def classify_event(event: Any) -> Trigger:
    """What an EventBridge event asks for: a full sync, one function, or nothing.

    Raises :class:`EventError` for an event the registrator does not handle.
    """
    return cast("Trigger", call("classifyEvent", event))


def plan(input: Mapping[str, Any]) -> Plan:
    """Computes the reconcile plan from configuration, trigger and observed state."""
    return cast("Plan", call("plan", input))


def plan_requests(input: Mapping[str, Any]) -> list[RequestPreview]:
    """What each of the plan's operations sends: the plan made from ``input``, each
    operation lowered (an extension data write shown without its value)."""
    return cast("list[RequestPreview]", call("planRequests", input))


def lower_operation(input: Mapping[str, Any]) -> RequestPreview:
    """What one operation sends: ``{"operation", "nodeName"?, "entry"?}``."""
    return cast("RequestPreview", call("lowerOperation", input))


def format_plan(plan: Mapping[str, Any]) -> str:
    """A plan as a readable table."""
    return cast("str", call("formatPlan", plan))


def extension_data_parameter(input: Mapping[str, Any]) -> PutParameter:
    """The ``PutParameter`` call that stores one service's extension data.

    The result holds a private key: send it, never print or log it.
    """
    return cast("PutParameter", call("extensionDataParameter", input))


def extension_settings(env: Optional[Mapping[str, str]] = None) -> ExtensionSettings:
    """The Lambda extension's settings from its environment (default: ``os.environ``)."""
    return cast(
        "ExtensionSettings", call("extensionSettings", dict(os.environ if env is None else env))
    )


def extension_upstream(entry: str) -> Upstream:
    """One ``CONSUL_SERVICE_UPSTREAMS`` entry, parsed."""
    return cast("Upstream", call("extensionUpstream", entry))


def extension_target(input: Mapping[str, Any]) -> DialTarget:
    """The SNI name and SPIFFE IDs the extension uses for one upstream."""
    return cast("DialTarget", call("extensionTarget", input))


def extension_data_read(value: str) -> ExtensionDataSummary:
    """What a stored extension data value holds (never its private key)."""
    return cast("ExtensionDataSummary", call("extensionDataRead", value))


def extension_peer(input: Mapping[str, Any]) -> PeerData:
    """What the registrator writes about one cluster peer, from ``GET /v1/peering/:name``."""
    return cast("PeerData", call("extensionPeer", input))


def extension_data_build(input: Mapping[str, Any]) -> PutParameter:
    """The ``PutParameter`` call with the datacenter, inactive roots and peers.

    The result holds a private key: send it, never print or log it.
    """
    return cast("PutParameter", call("extensionDataBuild", input))


def parse_get_resources(page: Mapping[str, Any]) -> FunctionPage:
    """The functions of one Resource Groups Tagging API ``GetResources`` page."""
    return cast("FunctionPage", call("parseGetResources", page))


def parse_get_function(response: Mapping[str, Any]) -> LambdaFunction:
    """The function of a Lambda ``GetFunction`` response."""
    return cast("LambdaFunction", call("parseGetFunction", response))


__version__: str = _native.__version__
