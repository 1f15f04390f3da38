"""The shared scenarios (tests/e2e/scenarios/*.json) through the Python Lambda handler.

Format and rules: tests/e2e/scenarios/README.md (the Node host runs the same files
in bindings/node/host-test/e2e.test.mjs). Every scenario runs twice, against real
Consul dev agents:

- ``acl``: ACLs on (default deny); the registrator's least-privilege token, made
  from docs/acl-policy.hcl, is read from Parameter Store (CONSUL_HTTP_TOKEN_PATH);
- ``tls``: HTTPS only; the CA certificate is read from Parameter Store
  (CONSUL_CACERT_PATH).

Seeding and checks use the agent's management token. Parameter values are never
printed; the handler's log lines are checked for tokens and private keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, cast

import boto3
import pytest
from cls_support import acl_policy as documented_acl_policy

from harness import ACCOUNT, NODE, PREFIX, REGION, Harness

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.json"))
FLAVOURS = ("acl", "tls")


def substitute(value: Any, account: str, region: str) -> Any:
    """Replaces the placeholders everywhere (keys and values), as the README says."""
    text = json.dumps(value)
    text = re.sub(r"\$\{tag:([^}]+)\}", lambda m: PREFIX + m.group(1), text)
    text = re.sub(
        r"\$\{arn:([^}]+)\}",
        lambda m: f"arn:aws:lambda:{region}:{account}:function:{m.group(1)}",
        text,
    )
    text = text.replace("${account}", account).replace("${region}", region)
    return json.loads(text)


def subset(expected: Any, actual: Any, where: str = "$") -> None:
    """Subset match (tests/vectors/README.md): expected null matches absent or null."""
    if expected is None:
        assert actual is None, f"{where}: expected null or absent, got {actual!r}"
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected an array, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: array length {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            subset(e, a, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for k, v in expected.items():
            subset(v, actual.get(k), f"{where}.{k}")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def apply_aws(h: Harness, action: dict[str, Any]) -> None:
    ((kind, a),) = action.items()
    h.missing_aliases = tuple(a.get("missingAliases") or ())
    if kind == "createFunction":
        h.create_function(a["name"], a.get("tags") or {})
    elif kind == "tagResource":
        h.tag(a["name"], a["tags"])
    elif kind == "untagResource":
        h.untag(a["name"], a["keys"])
    elif kind == "deleteFunction":
        h.delete_function(a["name"])
    else:
        raise AssertionError(f"unknown aws action {kind}")


def apply_consul(h: Harness, action: dict[str, Any]) -> None:
    ((kind, body),) = action.items()
    paths = {"register": "/v1/catalog/register", "configEntry": "/v1/config"}
    assert kind in paths, f"unknown consul action {kind}"
    h.consul.put(paths[kind], body)


def parameter(h: Harness, name: str) -> Optional[dict[str, Any]]:
    try:
        out = h.ssm.get_parameter(Name=name, WithDecryption=True)
    except h.ssm.exceptions.ParameterNotFound:
        return None
    return cast("dict[str, Any]", out["Parameter"])


def check(h: Harness, expect: dict[str, Any], error: Optional[BaseException], label: str) -> None:
    if expect.get("handler") == "ok":
        assert error is None, f"{label}: the handler failed: {error!r}"
    elif expect.get("handler") == "error":
        assert error is not None, f"{label}: the handler should have failed"

    if "services" in expect:
        actual = {name: sorted(s.get("Tags") or []) for name, s in h.consul.services().items()}
        want = {name: sorted(tags) for name, tags in expect["services"].items()}
        assert actual == want, f"{label}: services on node {NODE}"

    for name, args in (expect.get("serviceDefaults") or {}).items():
        entry = h.consul.get(f"/v1/config/service-defaults/{name}")
        if args is None:
            assert entry is None, f"{label}: service-defaults {name} should not exist: {entry}"
            continue
        assert entry is not None, f"{label}: service-defaults {name} should exist"
        assert entry.get("Protocol") == "http", f"{label}: {name} protocol"
        extensions = entry.get("EnvoyExtensions") or []
        assert len(extensions) == 1, f"{label}: {name} has one extension: {extensions}"
        assert extensions[0]["Name"] == "builtin/aws/lambda"
        assert extensions[0]["Arguments"] == args, f"{label}: {name} arguments"

    for name, want in (expect.get("configEntries") or {}).items():
        # "KIND/NAME" names an entry of another kind (mesh wiring).
        entry = h.consul.get(f"/v1/config/{name if '/' in name else 'service-defaults/' + name}")
        if want is None:
            assert entry is None, f"{label}: config entry {name} should not exist"
        else:
            assert entry is not None, f"{label}: config entry {name} should exist"
            subset(want, entry, f"{label}: config entry {name}")

    for name, want in (expect.get("parameters") or {}).items():
        param = parameter(h, name)
        if want is None:
            assert param is None, f"{label}: parameter {name} should not exist"
            continue
        assert param is not None, f"{label}: parameter {name} should exist"
        if "type" in want:
            assert param["Type"] == want["type"], f"{label}: parameter {name} type"
        if "jsonKeys" in want:
            value = json.loads(param["Value"])  # never printed
            assert isinstance(value, dict), f"{label}: parameter {name} is not a JSON object"
            keys = sorted(value)
            assert keys == sorted(want["jsonKeys"]), f"{label}: parameter {name} keys {keys}"


def private_key_lines(h: Harness, prefix: str) -> list[str]:
    """A base64 line of every private key stored under ``prefix`` (to look for in logs)."""
    lines = []
    for value in h.parameters(prefix).values():
        key = str(json.loads(value).get("privateKeyPEM") or "")
        body = [ln for ln in key.splitlines() if ln and not ln.startswith("-----")]
        lines.extend(body[:1])
    return lines


@pytest.fixture(params=FLAVOURS)
def harness(request: pytest.FixtureRequest) -> Harness:
    return cast("Harness", request.getfixturevalue(f"h_{request.param}"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(harness: Harness, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = harness
    sts = boto3.client("sts", endpoint_url=h.moto.url, region_name=REGION)
    account = str(sts.get_caller_identity()["Account"])
    assert account == ACCOUNT, "the handler's context ARN names ACCOUNT"
    scenario = substitute(json.loads(path.read_text()), account, REGION)
    env: dict[str, str] = scenario.get("env") or {}
    # Runners must not set these themselves (README); only the scenario does.
    assert "DATACENTER" not in h.env()
    assert "CONSUL_EXTENSION_DATA_PREFIX" not in h.env()
    h.setenv(**env)
    if scenario.get("meshPolicy") and h.token:
        # The documented policy with its mesh wiring rule (docs/acl-policy.hcl).
        h.token = h.consul.create_token(documented_acl_policy(mesh=True))
        h.put_secret(h.env()["CONSUL_HTTP_TOKEN_PATH"], h.token)

    secrets = [s for s in (h.token, h.consul.management_token) if s]
    for i, step in enumerate(scenario["steps"], 1):
        label = f"{path.name} step {i} ({step['description']})"
        for action in step.get("consul") or []:
            apply_consul(h, action)
        for action in step.get("aws") or []:
            apply_aws(h, action)
        event = h.schedule() if step["event"] == "schedule" else step["event"]
        error: Optional[BaseException] = None
        try:
            h.handle(event)
        except Exception as e:
            error = e
        logs = capsys.readouterr().out
        if env.get("CONSUL_EXTENSION_DATA_PREFIX"):
            secrets.extend(private_key_lines(h, env["CONSUL_EXTENSION_DATA_PREFIX"]))
        for line in logs.splitlines():
            record = json.loads(line)
            if "_aws" not in record:  # else the handler's metrics line (CloudWatch EMF)
                assert {"level", "msg", "time"} <= set(record), line
            for s in secrets:
                what = record.get("msg", "metrics")
                assert s not in line, f"{label}: a secret leaked into a log line: {what}"
        assert "PRIVATE KEY" not in logs
        check(h, step.get("expect") or {}, error, label)
