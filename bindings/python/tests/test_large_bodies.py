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


def test_a_body_fed_in_chunks_reads_as_the_whole_body() -> None:
    # Every Consul body goes in pieces (feed_chunk), the answer then carries the
    # bytes left: the step after is the one of the whole bodies in the JSON.
    as_json, _ = observed(as_bytes=False)
    engine = cls.Engine(START)
    engine.next(0)
    engine.feed([{"id": 1, "status": 200, "headers": {}, "body": '["dc1"]'}], 1)
    answers = answers_for(engine.next(2), as_bytes=False)
    for a in answers:
        if "body" in a:
            raw = a["body"].encode()
            for i in range(0, len(raw) - 7, 100_003):
                engine.feed_chunk(a["id"], raw[i : min(i + 100_003, len(raw) - 7)])
            a["body"] = raw[max(0, len(raw) - 7) :] if len(raw) > 7 else raw
    engine.feed(answers, 3)
    assert json.dumps(engine.next(4), sort_keys=True) == as_json


def test_chunks_of_a_request_that_failed_are_dropped() -> None:
    # A body cut off by an error: its chunks never reach another answer.
    engine = cls.Engine(START)
    engine.next(0)
    engine.feed_chunk(1, b'["dc9", ')
    engine.feed([{"id": 1, "error": {"code": "transport", "message": "connection reset"}}], 1)
    step, now = engine.next(2), 2
    while "sleep" in step:  # the retry's backoff
        now += step["sleep"]
        step = engine.next(now)
    consul = [r.get("consul", {}) for r in step.get("send", [])]
    retry = [r for r, c in zip(step["send"], consul) if c.get("path") == "/v1/catalog/datacenters"]
    assert retry, step  # the read goes again, under a new id
    answer = {"id": retry[0]["id"], "status": 200, "headers": {}, "body": b'["dc1"]'}
    engine.feed([answer], now + 1)
    after = engine.next(now + 2)
    whole = cls.Engine(START)
    whole.next(0)
    whole.feed([{"id": 1, "status": 200, "headers": {}, "body": '["dc1"]'}], 1)
    expected = whole.next(2)
    assert [r.get("consul", r.get("aws")) for r in after["send"]] == [
        r.get("consul", r.get("aws")) for r in expected["send"]
    ]
