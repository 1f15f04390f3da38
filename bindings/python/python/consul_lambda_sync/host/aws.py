"""AWS reads and writes (boto3): the Lambda inventory, GetFunction, Parameter Store.

- Inventory: Resource Groups Tagging API ``GetResources`` filtered to Lambda
  functions only (no tag filter, so a function whose ``enabled`` tag was removed
  or set to false is still seen when it has any tag left), 100 functions a page.
  Raw pages go through the core's ``parse_get_resources``. A page that fails
  makes the inventory incomplete: the planner then deletes nothing that could
  belong to the missing part.
- ``GetFunction`` for single-function events and to confirm deletions
  (``ResourceNotFoundException`` means absent).
- Parameter Store: the ACL token and CA certificate (decrypted), extension data
  (listed recursively under the prefix, written and deleted).

``AWS_ENDPOINT_URL`` (and the per-service ``AWS_ENDPOINT_URL_<SERVICE>``) is
honoured by boto3 itself (botocore >= 1.31), which is how the tests point the
host at a local moto server.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Optional, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

import consul_lambda_sync as core

if TYPE_CHECKING:  # boto3-stubs (type checking only; not needed at run time)
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_resourcegroupstaggingapi import ResourceGroupsTaggingAPIClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

FUNCTION_RESOURCE_TYPE = "lambda:function"
# GetResources returns at most 100 resources a page.
RESOURCES_PER_PAGE = 100
# A listing longer than this is taken as a pagination loop.
MAX_PAGES = 10_000


class AwsError(Exception):
    """An AWS call failed. ``unreachable`` is set for connection failures."""

    def __init__(
        self, message: str, *, code: str = "", unreachable: bool = False, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.unreachable = unreachable
        # The cause without the call's name ("ParameterNotFound: Parameter /x not found.").
        self.detail = detail or message


class AwsConfigError(AwsError):
    """No credentials or no region: a setup problem, not an outage."""


def error_code(err: BaseException) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return type(err).__name__


def is_unreachable(err: BaseException) -> bool:
    return isinstance(err, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError))


def describe_error(err: BaseException) -> str:
    """``Code: message`` for an AWS error answer, the text of anything else."""
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return f"{e.get('Code', 'Error')}: {e.get('Message', '')}".rstrip(": ")
    return str(err)


def wrap(err: BaseException, what: str) -> AwsError:
    """Turns a botocore error into an :class:`AwsError` with a short message."""
    detail = describe_error(err)
    if isinstance(err, (NoCredentialsError, NoRegionError)):
        return AwsConfigError(f"{what}: {detail}", code=type(err).__name__, detail=detail)
    return AwsError(
        f"{what}: {detail}",
        code=error_code(err),
        unreachable=is_unreachable(err),
        detail=detail,
    )


class AwsClients:
    """The boto3 clients the host uses, counting calls by operation."""

    def __init__(
        self,
        region: Optional[str] = None,
        session: Optional[Any] = None,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.session: Any = session or boto3.session.Session(region_name=region)
        if not self.session.region_name:
            raise AwsConfigError(
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)", code="NoRegionError"
            )
        self._config = BotoConfig(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent_extra="consul-lambda-sync",
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        with self._lock:
            c = self._clients.get(service)
            if c is None:
                c = self.session.client(service, config=self._config)
                c.meta.events.register("before-call", self._count)
                self._clients[service] = c
            return c

    def _count(self, model: Any = None, **_: Any) -> None:
        name = getattr(model, "name", "unknown")
        with self._lock:
            self.calls[name] += 1

    @property
    def tagging(self) -> ResourceGroupsTaggingAPIClient:
        return cast("ResourceGroupsTaggingAPIClient", self.client("resourcegroupstaggingapi"))

    @property
    def lambda_(self) -> LambdaClient:
        return cast("LambdaClient", self.client("lambda"))

    @property
    def ssm(self) -> SSMClient:
        return cast("SSMClient", self.client("ssm"))

    @property
    def sts(self) -> STSClient:
        return cast("STSClient", self.client("sts"))

    def account_id(self) -> str:
        try:
            return str(self.sts.get_caller_identity()["Account"])
        except (ClientError, BotoCoreError) as e:
            raise wrap(e, "sts GetCallerIdentity") from e

    # -- Lambda ----------------------------------------------------------------

    def list_functions(self) -> dict[str, Any]:
        """Lists every Lambda function with tags: ``{functions, complete, pages, error?}``.

        ``error`` is set (and ``complete`` false) when a page failed;
        ``unreachable`` tells whether that was a connection failure.
        """
        functions: list[dict[str, Any]] = []
        token: Optional[str] = None
        seen: set[str] = set()
        pages = 0
        while True:
            kwargs: dict[str, Any] = {
                "ResourceTypeFilters": [FUNCTION_RESOURCE_TYPE],
                "ResourcesPerPage": RESOURCES_PER_PAGE,
            }
            if token:
                kwargs["PaginationToken"] = token
            try:
                page = self.tagging.get_resources(**kwargs)
            except (ClientError, BotoCoreError) as e:
                err = wrap(e, f"tagging GetResources (page {pages + 1})")
                if isinstance(err, AwsConfigError):
                    raise err from e
                return {
                    "functions": functions,
                    "complete": False,
                    "pages": pages,
                    "error": str(err),
                    "unreachable": err.unreachable,
                }
            pages += 1
            parsed = core.parse_get_resources(
                {
                    "PaginationToken": page.get("PaginationToken") or "",
                    "ResourceTagMappingList": page.get("ResourceTagMappingList") or [],
                }
            )
            functions.extend(cast("list[dict[str, Any]]", parsed.get("functions") or []))
            token = parsed.get("nextToken")
            if not token:
                return {"functions": functions, "complete": True, "pages": pages}
            if token in seen or pages >= MAX_PAGES:
                return {
                    "functions": functions,
                    "complete": False,
                    "pages": pages,
                    "error": "tagging GetResources: the pagination token repeats",
                    "unreachable": False,
                }
            seen.add(token)

    def get_function(self, name_or_arn: str) -> Optional[dict[str, Any]]:
        """The function (``{arn, name, tags}``), or None when it does not exist."""
        try:
            out = self.lambda_.get_function(FunctionName=name_or_arn)
        except ClientError as e:
            if error_code(e) == "ResourceNotFoundException":
                return None
            raise wrap(e, f"lambda GetFunction {name_or_arn}") from e
        except BotoCoreError as e:
            raise wrap(e, f"lambda GetFunction {name_or_arn}") from e
        return cast(
            "dict[str, Any]",
            core.parse_get_function(
                {
                    "Configuration": {
                        "FunctionArn": (out.get("Configuration") or {}).get("FunctionArn", "")
                    },
                    "Tags": out.get("Tags") or {},
                }
            ),
        )

    # -- Parameter Store ---------------------------------------------------------

    def get_secure_parameter(self, name: str) -> str:
        """A parameter's decrypted value (the token or CA certificate)."""
        try:
            out = self.ssm.get_parameter(Name=name, WithDecryption=True)
        except (ClientError, BotoCoreError) as e:
            raise wrap(e, f"ssm GetParameter {name}") from e
        return str(out["Parameter"]["Value"])

    def parameters_under(self, prefix: str) -> list[dict[str, Any]]:
        """Every parameter under ``prefix`` (recursive, decrypted) as ``{Name, Value}``."""
        params: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "Path": prefix.rstrip("/") or "/",
            "Recursive": True,
            "WithDecryption": True,
            "MaxResults": 10,
        }
        pages = 0
        try:
            while True:
                out = self.ssm.get_parameters_by_path(**kwargs)
                pages += 1
                for p in out.get("Parameters") or []:
                    params.append({"Name": p["Name"], "Value": p.get("Value")})
                token = out.get("NextToken")
                if not token or pages >= MAX_PAGES:
                    break
                kwargs["NextToken"] = token
        except (ClientError, BotoCoreError) as e:
            raise wrap(e, f"ssm GetParametersByPath {prefix}") from e
        return params

    def put_parameter(self, call: dict[str, Any]) -> None:
        """Sends a ``PutParameter`` built by the core (holds a private key: never log ``call``)."""
        kwargs = {k: call[k] for k in ("Name", "Value", "Type", "Overwrite", "Tier") if k in call}
        try:
            self.ssm.put_parameter(**kwargs)
        except (ClientError, BotoCoreError) as e:
            raise wrap(e, f"ssm PutParameter {call.get('Name')}") from e

    def delete_parameter(self, name: str) -> bool:
        """Deletes a parameter; a missing one counts as deleted (returns False)."""
        try:
            self.ssm.delete_parameter(Name=name)
            return True
        except ClientError as e:
            if error_code(e) == "ParameterNotFound":
                return False
            raise wrap(e, f"ssm DeleteParameter {name}") from e
        except BotoCoreError as e:
            raise wrap(e, f"ssm DeleteParameter {name}") from e
