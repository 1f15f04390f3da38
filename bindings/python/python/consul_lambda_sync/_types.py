"""The shapes of the core's JSON API, as TypedDicts.

Every function of :mod:`consul_lambda_sync` returns plain dicts and lists; these
types only describe them for a type checker. Keys are camelCase, exactly as the
core writes them (the same JSON shape in every runtime). A key declared in a
``total=False`` class may be absent.

``tests/test_shapes.py`` checks real outputs against these declarations, so a
change of the core's shapes fails the tests instead of silently drifting.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, TypedDict, Union

# Every stable problem code of the core, in the core's documentation order.
# ``tests/test_errors.py`` checks this list against ``error_codes()``.
ERROR_CODES = Literal[
    "invalid_boolean",
    "invalid_invocation_mode",
    "empty_alias",
    "invalid_alias_name",
    "duplicate_alias",
    "enterprise_only_tag",
    "invalid_consul_name",
    "unknown_tag",
    "service_name_conflict",
    "invalid_arn",
    "invalid_function_name",
    "invalid_url",
    "invalid_parameter_path",
    "invalid_tier",
    "enterprise_requires_partitions",
    "partitions_require_enterprise",
    "invalid_node_name",
    "invalid_integer",
    "out_of_range",
    "invalid_log_level",
    "invalid_list",
    "inconsistent_settings",
    "invalid_config",
    "unsupported_event",
    "invalid_event",
    "invalid_input",
    "invalid_response",
    "unmanaged_service_conflict",
    "foreign_config_entry",
    "owned_by_other_registrator",
    "mass_deregistration_blocked",
    "orphan_not_owned",
    "inventory_incomplete",
    "function_load_failed",
    "leaf_missing",
    "unsafe_consul_name",
    "foreign_function",
    "tls_verification_disabled",
    "invalid_kms_key_id",
]
ErrorCode = ERROR_CODES

InvocationMode = Literal["SYNCHRONOUS", "ASYNCHRONOUS"]
FunctionStatus = Literal["managed", "disabled", "skipped", "invalid"]
Change = Literal["create", "update", "delete", "unchanged"]
OperationKind = Literal[
    "upsertConfigEntry",
    "registerService",
    "putExtensionData",
    "deregisterService",
    "deleteConfigEntry",
    "deleteExtensionData",
]
Tier = Literal["Standard", "Advanced", "Intelligent-Tiering"]
LogLevel = Literal["trace", "debug", "info", "warn", "error"]

# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------


class _DiagnosticRequired(TypedDict):
    code: ErrorCode
    message: str
    hint: str


class Diagnostic(_DiagnosticRequired, total=False):
    """One problem: what went wrong, where, and how to fix it."""

    key: str
    value: str
    function: str


class _FailureRequired(TypedDict):
    code: ErrorCode
    message: str
    hint: str
    errors: list[Diagnostic]


class Failure(_FailureRequired, total=False):
    """A call that could not produce its result (carried by every exception)."""

    key: str
    value: str


class ErrorCodeInfo(TypedDict):
    """One entry of :func:`consul_lambda_sync.error_codes`."""

    code: ErrorCode
    description: str


# ---------------------------------------------------------------------------
# Configuration.
# ---------------------------------------------------------------------------


class ConfigInput(TypedDict, total=False):
    """The typed configuration (``config_from_object``, ``plan``'s ``config``)."""

    nodeName: Optional[str]
    datacenter: Optional[str]
    enterprise: Optional[bool]
    partitions: Optional[list[str]]
    consulHttpAddr: Optional[str]
    consulCacertPath: Optional[str]
    consulHttpTokenPath: Optional[str]
    consulExtensionDataPrefix: Optional[str]
    consulExtensionDataTier: Optional[str]
    consulExtensionDataKmsKeyId: Optional[str]
    pageSize: Optional[int]
    logLevel: Optional[str]
    consulHttpSsl: Optional[bool]
    consulHttpSslVerify: Optional[bool]
    consulCacert: Optional[str]
    consulClientCert: Optional[str]
    consulClientKey: Optional[str]
    consulTlsServerName: Optional[str]
    consulHttpTokenSet: Optional[bool]
    name: Optional[str]
    syncFrequencyInMinutes: Optional[int]
    timeout: Optional[int]
    allowMassDeregistration: Optional[bool]
    warnings: Optional[list[Diagnostic]]


class _ConfigRequired(TypedDict):
    nodeName: str
    datacenter: Optional[str]
    enterprise: bool
    partitions: list[str]
    consulHttpAddr: str
    consulCacertPath: Optional[str]
    consulHttpTokenPath: Optional[str]
    consulExtensionDataPrefix: Optional[str]
    pageSize: int
    logLevel: LogLevel
    consulHttpSsl: bool
    consulHttpSslVerify: bool
    consulCacert: Optional[str]
    consulClientCert: Optional[str]
    consulClientKey: Optional[str]
    consulTlsServerName: Optional[str]
    consulHttpTokenSet: bool
    name: str
    syncFrequencyInMinutes: int
    timeout: int
    allowMassDeregistration: bool


class Config(_ConfigRequired, total=False):
    """A validated configuration with every default applied."""

    consulExtensionDataTier: Tier
    consulExtensionDataKmsKeyId: str
    warnings: list[Diagnostic]


# ---------------------------------------------------------------------------
# Tags and functions.
# ---------------------------------------------------------------------------


class TagOptions(TypedDict, total=False):
    """Input of ``tags_from_options``: the settings to express as tags."""

    enabled: Optional[bool]
    payloadPassthrough: Optional[bool]
    invocationMode: Optional[InvocationMode]
    datacenter: Optional[str]
    namespace: Optional[str]
    partition: Optional[str]
    aliases: Optional[list[str]]


class _TagSettingsRequired(TypedDict):
    enabled: bool
    payloadPassthrough: bool
    invocationMode: InvocationMode
    aliases: list[str]


class TagSettings(_TagSettingsRequired, total=False):
    """The settings a function's tags ask for."""

    datacenter: str
    namespace: str
    partition: str


class TagReport(TypedDict):
    """Output of ``parse_tags``."""

    settings: TagSettings
    errors: list[Diagnostic]
    warnings: list[Diagnostic]


class _LambdaFunctionRequired(TypedDict):
    arn: str
    tags: dict[str, str]


class LambdaFunction(_LambdaFunctionRequired, total=False):
    """A Lambda function as the core reads it (ARN, name, tags)."""

    name: str


class _ServiceTargetRequired(TypedDict):
    name: str
    arn: str


class ServiceTarget(_ServiceTargetRequired, total=False):
    """A Consul service a function (or one of its aliases) is registered as."""

    alias: str
    datacenter: str
    namespace: str
    partition: str


class _FunctionReportRequired(TypedDict):
    arn: str
    name: str
    status: FunctionStatus
    settings: TagSettings
    services: list[ServiceTarget]
    errors: list[Diagnostic]
    warnings: list[Diagnostic]


class FunctionReport(_FunctionReportRequired, total=False):
    """Output of ``evaluate_function``: what the registrator does with a function."""

    reason: str


class _FunctionPageRequired(TypedDict):
    functions: list[LambdaFunction]


class FunctionPage(_FunctionPageRequired, total=False):
    """Output of ``parse_get_resources``: one page of functions."""

    nextToken: str


# ---------------------------------------------------------------------------
# Events.
# ---------------------------------------------------------------------------


class FullSyncTrigger(TypedDict):
    """Reconcile every function (a scheduled event)."""

    kind: Literal["fullSync"]


class _FunctionTriggerRequired(TypedDict):
    kind: Literal["function"]
    arn: str
    name: str


class FunctionTrigger(_FunctionTriggerRequired, total=False):
    """Reconcile one function (a Lambda CloudTrail API call)."""

    eventName: str


class _IgnoreTriggerRequired(TypedDict):
    kind: Literal["ignore"]
    reason: str


class IgnoreTrigger(_IgnoreTriggerRequired, total=False):
    """Nothing to do, and why."""

    eventName: str


Trigger = Union[FullSyncTrigger, FunctionTrigger, IgnoreTrigger]
"""Output of ``classify_event``; tell the kinds apart by ``trigger["kind"]``."""

# ---------------------------------------------------------------------------
# Plans.
# ---------------------------------------------------------------------------


class ServiceKey(TypedDict, total=False):
    """Where a service lives in Consul (``name`` is always present)."""

    name: str
    datacenter: str
    partition: str
    namespace: str


class _ConsulRequestRequired(TypedDict):
    target: Literal["consul"]
    method: str
    path: str


class ConsulRequest(_ConsulRequestRequired, total=False):
    """An HTTP request to Consul's API."""

    query: dict[str, str]
    body: Any


class _SsmRequestRequired(TypedDict):
    target: Literal["ssm"]
    action: str
    name: str


class SsmRequest(_SsmRequestRequired, total=False):
    """A Parameter Store call."""

    tier: Tier
    keyId: str


Request = Union[ConsulRequest, SsmRequest]


class _OperationRequired(TypedDict):
    kind: OperationKind
    service: ServiceKey
    change: Change
    reason: str
    request: Request


class Operation(_OperationRequired, total=False):
    """One step of a plan, with the exact request to send."""

    function: str
    confirmAbsent: str
    leafSerial: str


class _ServiceChangeRequired(TypedDict):
    service: ServiceKey
    change: Change
    reason: str


class ServiceChange(_ServiceChangeRequired, total=False):
    """One row of the plan's table: a service and its change."""

    function: str


class Skip(TypedDict):
    """A function the plan does not register, and why."""

    function: str
    status: FunctionStatus
    reason: str


class _IgnoredRequired(TypedDict):
    reason: str


class Ignored(_IgnoredRequired, total=False):
    """An observed Consul object the plan leaves alone, and why."""

    service: ServiceKey


class Confirmation(TypedDict):
    """A deletion that waits for ``GetFunction`` to confirm a function is gone."""

    function: str
    services: list[str]


class PlanSummary(TypedDict):
    """The counts of a plan."""

    create: int
    update: int
    delete: int
    unchanged: int
    operations: int
    errors: int
    warnings: int
    skipped: int


class Plan(TypedDict):
    """Output of ``plan``: what to do, in order, and everything worth saying."""

    operations: list[Operation]
    services: list[ServiceChange]
    errors: list[Diagnostic]
    warnings: list[Diagnostic]
    skips: list[Skip]
    ignored: list[Ignored]
    confirmations: list[Confirmation]
    summary: PlanSummary


class _PutParameterRequired(TypedDict):
    Name: str
    Value: str
    Type: str
    Overwrite: bool


_TierName = Tier


class PutParameter(_PutParameterRequired, total=False):
    """Output of ``extension_data_parameter``: the ``PutParameter`` call (holds a
    private key: send it, never print it)."""

    Tier: _TierName
    KeyId: str
