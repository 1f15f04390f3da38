"""The core's signed AWS calls (``http``, issue 23) on a real sync against moto: every call
the host carried is signed exactly as botocore's own SigV4 signer signs the same request, and
the answers are read as boto3 reads them (the sync converges)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from consul_lambda_sync.host import handler as handler_module
from consul_lambda_sync.host.transport import AwsHttp

from harness import REGION, Harness

if TYPE_CHECKING:
    import pytest
    from consul_lambda_sync import Answer
    from consul_lambda_sync._types import HttpCall

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION = "IQoJb3JpZ2luX2VjEXAMPLE-session-token"
SIGNING_NAMES = {"tagging": "tagging", "lambda": "lambda", "ssm": "ssm", "sts": "sts"}


def botocore_signature(call: HttpCall, service: str) -> tuple[str, str]:
    """The signed headers and signature botocore computes for the same request."""
    headers = {k: v for k, v in call["headers"].items() if k != "authorization"}
    request = AWSRequest(
        method=call["method"], url=call["url"], data=call["body"].encode(), headers=headers
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, SESSION), service, REGION)
    canonical = signer.canonical_request(request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    return signed, signer.signature(signer.string_to_sign(request, canonical), request)


def test_signed_calls_match_botocore_and_the_sync_converges(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.setenv(
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_SESSION_TOKEN=SESSION,
        CONSUL_HTTP_TOKEN_PATH="/cls/aws-http/token",
    )
    h.put_secret("/cls/aws-http/token", "any-token")  # the dev agent has no ACLs
    h.enabled("orders", aliases="prod")
    h.enabled("payments")
    carried: list[tuple[str, HttpCall, Answer]] = []
    call = AwsHttp.call

    def spy(self: AwsHttp, rid: int, req: HttpCall, timeout: float) -> Answer:
        answer = call(self, rid, req, timeout)
        carried.append((req["headers"].get("x-amz-target") or req["url"], req, answer))
        return answer

    monkeypatch.setattr(AwsHttp, "call", spy)

    # No context: the account comes from STS (the query protocol).
    out = dict(handler_module.handler(h.schedule(), None))
    assert out["ok"], out
    assert sorted(h.consul.services()) == ["orders", "orders-prod", "payments"]
    # A deleted function's event: its absence is confirmed with ListTags (REST-JSON).
    h.delete_function("payments")
    out = h.handle(h.delete_event("payments"))
    assert out["ok"], out
    assert sorted(h.consul.services()) == ["orders", "orders-prod"]

    seen: set[str] = set()
    for what, req, answer in carried:
        auth = req["headers"]["authorization"]
        m = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/(\w+)/aws4_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
            auth,
        )
        assert m, auth
        service, signed, signature = m.groups()
        assert service == SIGNING_NAMES[service]
        assert (signed, signature) == botocore_signature(req, service), what
        assert req["headers"]["x-amz-security-token"] == SESSION
        assert SECRET not in repr(req)
        op = _operation(req)
        seen.add(op)
        # The deleted function's ListTags is AWS's "not found": an answer, not a failure.
        assert answer.get("status") == (404 if op == "ListTags" else 200), (what, answer)
    assert {"GetCallerIdentity", "GetParameter", "GetResources", "ListAliases", "ListTags"} <= seen


def _operation(req: Any) -> str:
    target = req["headers"].get("x-amz-target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    if req["body"].startswith("Action="):
        return str(req["body"]).split("&")[0].removeprefix("Action=")
    return "ListTags" if "/tags/" in req["url"] else "ListAliases"
