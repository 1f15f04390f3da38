"""The registrator host: carries the requests of the core's sync engine (docs/engine.md).

- Lambda handler: ``consul_lambda_sync.host.handler.handler``
- CLI: ``consul-lambda-sync`` (or ``python -m consul_lambda_sync.host``)
- Preflight: :func:`doctor` (the CLI's ``consul-lambda-sync doctor``)

With AWS credentials in the environment (Lambda's), the core signs every AWS call and both
Consul and AWS are reached with the standard library; otherwise AWS calls go through ``boto3``
(the ``host`` extra), which finds the credentials (profiles, SSO, …).
"""

from __future__ import annotations

import os
import random
import sys
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from collections.abc import Mapping

    from consul_lambda_sync import DoctorReport, Start, SyncResult

    from .log import JsonLogger
    from .transport import Aws

__all__ = ["doctor", "doctor_result"]


def doctor_result(
    env: Mapping[str, str], aws: Optional[Aws] = None, log: Optional[JsonLogger] = None
) -> SyncResult:
    """Runs the core's doctor (``Start.doctor``): the result, its report in ``doctor``."""
    # Imported here: importing the package needs no boto3 (the CLI says which extra is missing).
    from .handler import aws_access, carrier, run, start_env  # noqa: PLC0415
    from .log import JsonLogger  # noqa: PLC0415
    from .transport import Aws  # noqa: PLC0415

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    start: Start = {"env": start_env(env), "region": region, "doctor": True}
    start["seed"] = random.getrandbits(62)
    access = aws_access(env) if aws is None else None
    if access:
        start["aws"] = access
    log = log or JsonLogger("error", stream=sys.stderr)
    return run(start, carrier(env, aws or Aws(region or None), log), log)


def doctor(
    env: Optional[Mapping[str, str]] = None, *, aws: Any = None, log: Any = None
) -> DoctorReport:
    """Checks what this configuration needs from Consul and AWS, writing nothing: a
    report of checks (``ok``, ``missing``, ``error``, ``skipped``), each missing one
    with the Consul rule or IAM action to add. ``env``: default ``os.environ``."""
    result = doctor_result(dict(os.environ if env is None else env), aws, log)
    return result["doctor"]
