"""``consul-lambda-sync doctor`` and ``consul_lambda_sync.host.doctor`` on a real Consul
agent with ACLs on (default deny) and moto, with three tokens: the project's policy
(docs/acl-policy.hcl), upstream's documented policy (``service_prefix "" write`` only)
and one lacking node write. In each case the doctor's verdict is checked against what
a real sync then does."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from cls_support import MotoServer, Proxy, acl_policy
from consul_lambda_sync.host import doctor
from consul_lambda_sync.host.handler import SyncFailed

from conftest import TOKEN_PARAM
from harness import NODE, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cls_support import ConsulAgent

UPSTREAM_POLICY = 'service_prefix "" { policy = "write" }\n'
# The project's policy (docs/acl-policy.hcl) with the node rule lowered to read.
NO_NODE_WRITE = (
    f'node "{NODE}" {{ policy = "read" }}\n'
    'service_prefix "" { policy = "write" }\n'
    'node_prefix "" { policy = "read" }\n'
    'agent_prefix "" { policy = "read" }\n'
)
NODE_WRITE = f'node "{NODE}" {{ policy = "write" }}'
# The names other nodes use (GET /v1/catalog/services), read before a name is taken.
NAMES_READ = 'node_prefix "" { policy = "read" }'
AGENT_READ = 'agent_prefix "" { policy = "read" }'


def by_code(report: Any) -> dict[str, dict[str, Any]]:
    return {c["code"]: dict(c) for c in report["checks"]}


def statuses(report: Any) -> dict[str, str]:
    return {c["code"]: c["status"] for c in report["checks"]}


def use_token(h: Harness, rules: str, name: str) -> str:
    token = h.consul.create_token(rules, name=name)
    h.put_secret(TOKEN_PARAM, token)
    h.token = token
    return token


def doctor_cli(h: Harness, *args: str) -> tuple[int, dict[str, Any], str]:
    out = h.cli("doctor", "--json", *args)
    return out.returncode, json.loads(out.stdout), out.stderr


def test_project_policy_passes_and_the_sync_succeeds(h_acl: Harness) -> None:
    h = h_acl
    h.setenv(CONSUL_EXTENSION_DATA_PREFIX="/cls/doctor")
    h.enabled("orders", aliases="prod")
    h.enabled("payments", invocation_mode="asynchronous")

    report = doctor(h.env())

    assert report["ok"], report
    got = statuses(report)
    for code in (
        "config",
        "aws.identity",
        "ssm.token",
        "consul.reachable",
        "consul.agent_read",  # DATACENTER unset: agent read is needed, and granted
        "consul.node_write",
        "consul.service_write",
        "consul.node_read",
        "consul.service_read",
        "consul.names_read",
        "consul.connect_ca",
        "aws.list_functions",
        "aws.list_tags",
        "aws.list_aliases",
        "ssm.extension_data_read",
    ):
        assert got[code] == "ok", (code, by_code(report)[code])
    assert got["ssm.ca_cert"] == "skipped"
    write = by_code(report)["ssm.extension_data_write"]
    assert write["status"] == "skipped"
    assert write["action"] == "ssm:PutParameter, ssm:DeleteParameter"
    # Every managed service name was asked of /v1/internal/acl/authorize.
    assert "on the 3 name(s) checked" in by_code(report)["consul.service_write"]["message"]
    assert report["consulRules"] == []
    assert report["iamActions"] == []

    exit_code, doc, _ = doctor_cli(h)
    assert exit_code == 0
    assert doc["ok"]
    assert doc["verdict"] == "ok"
    assert doc["exitCode"] == 0
    assert statuses(doc) == got

    # The doctor wrote nothing; the sync then succeeds with the same token.
    assert h.consul.node() is None
    out = h.sync()
    assert out["ok"]
    assert out["summary"]["create"] == 3


def test_mesh_wiring_needs_mesh_write(h_acl: Harness) -> None:
    """With mesh wiring on, the project's base policy lacks `mesh = "write"`: the
    doctor says so, and a sync fails there; with the documented mesh rule both pass."""
    h = h_acl
    h.setenv(TERMINATING_GATEWAY_NAME="lambda-gateway", TERMINATING_GATEWAY_CREATE="true")
    h.enabled("orders")
    use_token(h, acl_policy(), "doctor-no-mesh")

    report = doctor(h.env())
    assert not report["ok"]
    check = by_code(report)["consul.mesh_write"]
    assert check["status"] == "missing", check
    assert check["rule"] == 'mesh = "write"'
    assert report["consulRules"] == ['mesh = "write"']
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert 'mesh = \\"write\\"' in json.dumps(err.value.summary), err.value.summary

    use_token(h, acl_policy(mesh=True), "doctor-mesh")
    report = doctor(h.env())
    assert report["ok"], report
    assert statuses(report)["consul.mesh_write"] == "ok"
    out = h.sync()
    assert out["ok"], out


def test_upstream_policy_without_datacenter_stops_at_agent_self(
    h_acl: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = h_acl
    token = use_token(h, UPSTREAM_POLICY, "upstream-policy")
    h.enabled("orders")

    report = doctor(h.env())

    assert not report["ok"]
    checks = by_code(report)
    assert checks["consul.agent_read"]["status"] == "missing"
    assert checks["consul.agent_read"]["rule"] == AGENT_READ
    assert "DATACENTER" in checks["consul.agent_read"]["message"]
    assert checks["consul.node_write"]["status"] == "missing"
    assert checks["consul.node_write"]["rule"] == NODE_WRITE
    assert checks["consul.service_write"]["status"] == "ok"
    assert report["consulRules"] == [AGENT_READ, NODE_WRITE]

    out = h.cli("doctor")
    assert out.returncode == 1, out.stderr
    assert f"add: {AGENT_READ}" in out.stdout
    assert f"add: {NODE_WRITE}" in out.stdout
    assert "MISSING  consul.agent_read" in out.stdout
    assert token not in out.stdout + out.stderr

    # The sync: acl_denied at GET /v1/agent/self, as the doctor said.
    with pytest.raises(SyncFailed) as err:
        h.sync()
    failure = err.value.summary["failure"]
    assert failure["code"] == "acl_denied"
    assert "agent_prefix" in failure["hint"]
    assert h.consul.node() is None
    assert token not in capsys.readouterr().out


def names_list_needs_node_read(h: Harness) -> bool:
    """Whether this Consul filters GET /v1/catalog/services by node rules.

    Consul 1.15 answers the list with every service the token may read,
    whatever its node rules (seen on 1.15.4 with `service_prefix "" write`
    only: no X-Consul-Results-Filtered-By-ACLs, names on every node listed);
    1.22 leaves out the names on nodes the token cannot read."""
    version = str(h.consul.get("/v1/agent/self")["Config"]["Version"])
    return not version.startswith("1.15.")


def test_upstream_policy_with_datacenter_and_an_existing_node_is_filtered(
    h_acl: Harness,
) -> None:
    h = h_acl
    # Upstream registered the node earlier (its own token had node write).
    h.consul.put(
        "/v1/catalog/register",
        {"Node": NODE, "Address": "lambdas.internal", "NodeMeta": {"external-node": "true"}},
    )
    use_token(h, UPSTREAM_POLICY, "upstream-policy-dc")
    h.setenv(DATACENTER="dc1")
    h.enabled("orders")

    report = doctor(h.env())

    checks = by_code(report)
    assert checks["consul.agent_read"]["status"] == "skipped"  # DATACENTER is set
    assert checks["consul.node_read"]["status"] == "missing"
    assert "acl_filtered" in checks["consul.node_read"]["message"]
    assert checks["consul.node_write"]["status"] == "missing"
    assert checks["consul.service_write"]["status"] == "ok"
    # DATACENTER is set: the names list is probed there. Consul 1.22 filters it
    # by node (no node_prefix read); 1.15 lists every name a token may read as a
    # service, so there the probe finds the list whole and asks for nothing.
    if names_list_needs_node_read(h):
        assert checks["consul.names_read"]["status"] == "missing"
        assert checks["consul.names_read"]["rule"] == NAMES_READ
        assert "acl_filtered" in checks["consul.names_read"]["message"]
        # The node's write rule covers its read: that one, and the names rule, to add.
        assert report["consulRules"] == [NODE_WRITE, NAMES_READ]
    else:
        assert checks["consul.names_read"]["status"] == "ok"
        assert report["consulRules"] == [NODE_WRITE]
    code, doc, _ = doctor_cli(h)
    assert code == 1
    assert doc["verdict"] == "failed"

    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert err.value.summary["failure"]["code"] == "acl_filtered"
    assert h.consul.services() == {}


def test_a_token_without_node_write_fails_at_the_first_registration(h_acl: Harness) -> None:
    h = h_acl
    use_token(h, NO_NODE_WRITE, "no-node-write")
    h.enabled("orders")

    report = doctor(h.env())

    got = statuses(report)
    missing = sorted(k for k, v in got.items() if v == "missing")
    assert missing == ["consul.node_write"]
    assert by_code(report)["consul.node_write"]["rule"] == NODE_WRITE
    assert got["consul.node_read"] == "ok"
    assert got["consul.names_read"] == "ok"
    code, doc, _ = doctor_cli(h)
    assert code == 1
    assert doc["consulRules"] == [NODE_WRITE]

    # The sync reads fine, then the transaction that creates the node is refused.
    with pytest.raises(SyncFailed) as err:
        h.sync()
    summary = err.value.summary
    assert summary["operations"]["failed"] >= 1
    errors = " ".join(str(f.get("error")) for f in summary["failures"])
    assert "needs node write" in errors
    assert NODE_WRITE in errors
    assert h.consul.node() is None


def test_missing_parameters_and_a_bad_configuration(h_acl: Harness) -> None:
    h = h_acl
    h.setenv(CONSUL_CACERT_PATH="/cls/doctor/no-such-ca")
    report = doctor(h.env())
    ca = by_code(report)["ssm.ca_cert"]
    assert ca["status"] == "missing"
    assert "does not exist" in ca["message"]
    assert ca["resource"].endswith(":parameter/cls/doctor/no-such-ca")

    h.setenv(NODE_NAME="not a node")
    code, doc, _ = doctor_cli(h)
    assert code == 3
    assert doc["verdict"] == "invalid_config"
    assert by_code(doc)["config"]["status"] == "error"
    assert by_code(doc)["config"]["message"].startswith("NODE_NAME=not a node: ")


def test_consul_unreachable(h_acl: Harness) -> None:
    h = h_acl
    h.setenv(CONSUL_HTTP_ADDR="http://127.0.0.1:1", CONSUL_TIMEOUT_MS="500")
    code, doc, _ = doctor_cli(h)
    assert code == 4, doc
    checks = by_code(doc)
    assert checks["consul.reachable"]["status"] == "error"
    assert checks["consul.node_write"]["status"] == "skipped"
    assert checks["aws.list_functions"]["status"] == "ok"


def test_a_token_consul_does_not_know(h_acl: Harness) -> None:
    h = h_acl
    h.put_secret(TOKEN_PARAM, "00000000-1111-2222-3333-444444444444")
    h.enabled("orders")
    code, doc, _ = doctor_cli(h)
    assert code == 1
    checks = by_code(doc)
    assert checks["consul.reachable"]["status"] == "ok"
    for name in ("consul.agent_read", "consul.node_write", "consul.node_read"):
        assert checks[name]["status"] == "error", name
        assert "ACL not found" in checks[name]["message"]
    assert doc["consulRules"] == []
    with pytest.raises(SyncFailed):
        h.sync()


def test_without_the_authorize_endpoint_the_read_probes_decide(
    h_acl: Harness, workroot: Path
) -> None:
    """A Consul (or a proxy in front of it) without POST /v1/internal/acl/authorize:
    the writes are reported as not checked, with the rule the sync needs, and the
    read-only probes and the filtered-results header still find what is missing."""
    h = h_acl
    proxy = Proxy("consul", h.consul.addr, workroot).start()
    try:
        proxy.faults([{"match": "acl/authorize", "action": "status", "status": 404}])
        h.consul.put(
            "/v1/catalog/register",
            {"Node": NODE, "Address": "lambdas.internal", "NodeMeta": {"external-node": "true"}},
        )
        use_token(h, UPSTREAM_POLICY, "upstream-policy-no-authorize")
        h.setenv(CONSUL_HTTP_ADDR=proxy.url, DATACENTER="dc1")
        h.enabled("orders")

        report = doctor(h.env())

        checks = by_code(report)
        for name in ("consul.node_write", "consul.service_write"):
            assert checks[name]["status"] == "skipped", checks[name]
            assert "not checked" in checks[name]["message"]
            assert "HTTP 404" in checks[name]["message"]
        assert checks["consul.node_write"]["rule"] == NODE_WRITE
        assert checks["consul.node_read"]["status"] == "missing"
        assert checks["consul.node_read"]["rule"] == f'node "{NODE}" {{ policy = "read" }}'
        assert not report["ok"]
        assert proxy.stats()["injected"] >= 1

        with pytest.raises(SyncFailed) as err:
            h.sync()
        assert err.value.summary["failure"]["code"] == "acl_filtered"
    finally:
        proxy.stop()


#: moto enforces IAM after this many requests: Harness's role, then the user, its
#: policy and key, and the function below.
SETUP_ACTIONS = 5


@pytest.fixture
def moto_iam(workroot: Path) -> Iterator[MotoServer]:
    """A moto server that enforces IAM policies (after SETUP_ACTIONS requests)."""
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
    try:
        server = MotoServer(workroot).start()
    finally:
        del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
    yield server
    server.stop()


def test_iam_access_denied_names_the_action(
    moto_iam: MotoServer, consul_plain: ConsulAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    consul_plain.clean()
    h = Harness(moto_iam, consul_plain, monkeypatch)  # request 1: its role
    iam_client = boto3.client("iam", endpoint_url=moto_iam.url, region_name="us-east-1")
    iam_client.create_user(UserName="registrator")
    allowed = ["sts:GetCallerIdentity", "ssm:GetParameter", "lambda:ListTags"]
    statement = {"Effect": "Allow", "Action": allowed, "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    iam_client.put_user_policy(
        UserName="registrator", PolicyName="narrow", PolicyDocument=json.dumps(policy)
    )
    key = iam_client.create_access_key(UserName="registrator")["AccessKey"]
    h.enabled("orders")  # request 5; from here on moto checks every request
    h.setenv(
        AWS_ACCESS_KEY_ID=key["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
        CONSUL_EXTENSION_DATA_PREFIX="/cls/iam",
    )

    report = doctor(h.env())

    checks = by_code(report)
    assert checks["aws.identity"]["status"] == "ok"
    listing = checks["aws.list_functions"]
    assert listing["status"] == "missing", listing
    assert listing["action"] == "tag:GetResources"
    assert listing["resource"] == "*"
    ext = checks["ssm.extension_data_read"]
    assert ext["status"] == "missing", ext
    assert ext["action"] == "ssm:GetParametersByPath"
    assert ext["resource"].endswith(":parameter/cls/iam")
    assert report["iamActions"][:2] == ["tag:GetResources", "ssm:GetParametersByPath"]
    # No ACLs on this agent: /v1/internal/acl/authorize says so (401), which is not a missing rule.
    assert checks["consul.node_write"]["status"] == "ok"
    assert "ACLs are disabled" in checks["consul.node_write"]["message"]
    out = h.cli("doctor")
    assert out.returncode == 1
    assert "allow: tag:GetResources on *" in out.stdout
    assert "Allow in the registrator's IAM role: tag:GetResources" in out.stdout

    # The sync: the listing is refused, so the inventory is incomplete and it fails.
    with pytest.raises(SyncFailed) as err:
        h.sync()
    assert err.value.summary["inventory"]["complete"] is False
    assert "GetResources" in err.value.summary["inventory"]["error"]
