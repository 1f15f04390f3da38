"""Large Consul bodies reach the engine as bytes (``Engine.feed`` → the core's
``feed_body``), and the engine reads them exactly as it reads the same text inside
the answers' JSON."""

from __future__ import annotations

import json
from typing import Any, Union

import consul_lambda_sync as cls
import pytest
from consul_lambda_sync import _native

START = {
    "region": "us-east-1",
    "accountId": "123456789012",
    "seed": 1,
    "env": {"DATACENTER": "dc1"},
}
ENABLED = "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"


def observation_bodies() -> dict[str, str]:
    """The answers of the observation step: node-services, service-defaults padded
    past LARGE_BODY_BYTES (JSON allows the trailing white space), the names elsewhere."""
    node = {
        "Node": {"Node": "lambdas"},
        "Services": [
            {
                "ID": "orders",
                "Service": "orders",
                "Tags": ["managed-by-lambda-registrator"],
                "ModifyIndex": 7,
            }
        ],
    }
    entries = [
        {
            "Kind": "service-defaults",
            "Name": "orders",
            "Protocol": "http",
            "ModifyIndex": 7,
            "EnvoyExtensions": [
                {
                    "Name": "builtin/aws/lambda",
                    "Arguments": {"ARN": ARN, "PayloadPassthrough": False},
                }
            ],
        }
    ]
    padded = json.dumps(entries) + " " * (cls.LARGE_BODY_BYTES + 10)
    return {
        "/v1/catalog/node-services/lambdas": json.dumps(node),
        "/v1/config/service-defaults": padded,
        "/v1/catalog/services": "{}",
    }


def answers_for(step: dict[str, Any], as_bytes: bool) -> list[Any]:
    bodies = observation_bodies()
    out: list[Any] = []
    for req in step["send"]:
        if "aws" in req:
            tags = [{"Key": ENABLED, "Value": "true"}]
            page = {"ResourceTagMappingList": [{"ResourceARN": ARN, "Tags": tags}]}
            out.append({"id": req["id"], "ok": page})
            continue
        body: Union[str, bytes, bytearray] = bodies[req["consul"]["path"]]
        if as_bytes and req["consul"]["path"].endswith("node-services/lambdas"):
            body = bytearray(body.encode())  # a small body given as bytes goes the same way
        heads = {"x-consul-index": "9"}
        out.append({"id": req["id"], "status": 200, "headers": heads, "body": body})
    return out


def observed(as_bytes: bool) -> tuple[str, int]:
    """The step after the observation, and how many bodies went as bytes."""
    engine = cls.Engine(START)
    engine.next(0)
    engine.feed([{"id": 1, "status": 200, "headers": {}, "body": '["dc1"]'}], 1)
    step = engine.next(2)
    answers = answers_for(step, as_bytes)
    fed_raw = 0
    if as_bytes:
        native = engine._native
        real = native.feed_body

        class Counting:
            def __getattr__(self, name: str) -> Any:
                return getattr(native, name)

            def feed_body(self, *args: Any) -> None:
                nonlocal fed_raw
                fed_raw += 1
                real(*args)

        engine._native = Counting()  # type: ignore[assignment]
        engine.feed(answers, 3)
        engine._native = native
    else:
        # Everything inside the answers' JSON, as before the split.
        native = engine._native
        native.feed(json.dumps(answers), 3)
    return json.dumps(engine.next(4), sort_keys=True), fed_raw


def test_bytes_and_large_text_read_as_the_same_json() -> None:
    as_json, _ = observed(as_bytes=False)
    as_bytes, fed_raw = observed(as_bytes=True)
    # The padded service-defaults answer (text over the threshold) and the
    # node-services answer (bytes) went on their own; the step after is the same.
    assert fed_raw == 2
    assert as_bytes == as_json
    # And the observation was read: the registered service and its padded entry
    # are what the tags ask for, so nothing is written.
    done = json.loads(as_json)["done"]
    assert done["summary"]["unchanged"] == 1, done["message"]
    assert done["applied"]["updated"] == 0


def test_the_threshold_is_the_cores() -> None:
    assert cls.LARGE_BODY_BYTES == _native.LARGE_BODY_BYTES == 1 << 20


def test_invalid_utf8_in_a_body_is_replaced_as_in_text() -> None:
    # A byte that is not UTF-8 reads as U+FFFD, as the transport's
    # decode("utf-8", "replace") of a small body would.
    steps = []
    for body in (b'["dc1", "\xff"]', '["dc1", "\ufffd"]'):
        engine = cls.Engine(START)
        engine.next(0)
        engine.feed([{"id": 1, "status": 200, "headers": {}, "body": body}], 1)
        steps.append(json.dumps(engine.next(2), sort_keys=True))
    assert steps[0] == steps[1]


def test_a_body_that_is_not_bytes_or_text_is_a_type_error() -> None:
    engine = cls.Engine(START)
    with pytest.raises(TypeError):
        engine._native.feed_body(1, 200, "{}", memoryview(b"[]"), 1)  # type: ignore[arg-type]
