"""Each example app's stack deployed into moto's CloudFormation (tests/deploy/stack.py), then
the registrator function it deployed run as Lambda runs it (tests/deploy/rie.py: AWS's
Runtime Interface Emulator and runtime interface client, on the runtime the template names)
from what the emulator holds: the code (the object in the assets bucket the function was
made from, checked against the function's CodeSha256), handler, runtime, environment and
role (its credentials from STS AssumeRole). Against a real Consul agent (ACLs and HTTPS; its
token and CA in Parameter Store, where the template's environment says) and moto: a
scheduled full sync, each CloudTrail event kind (tests/deploy/cloudtrail-samples.json, for
calls really made on moto), a failed call, and a full sync with nothing to do; the result
checked in Consul after each. Then the alarms and the dashboard are checked against the
metrics lines the function printed.

What is not Lambda's: CONSUL_HTTP_ADDR is pointed at the local agent (the examples name
consul.internal.example.com); AWS_ENDPOINT_URL points the SDK at moto; arm64 code runs on
this x86_64 machine (the Node host then loads its WebAssembly core, as it does wherever its
native addon cannot load).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlparse

import boto3
import pytest
from cls_support import ENABLED, PREFIX, MotoServer, acl_policy

from conftest import APPS, cloud_assembly
from rie import DeployedFunction, Invocation, Runtime
from stack import Deployed, deploy, registrator_function

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cls_support import ConsulAgent

#: The account of AWS's Runtime Interface Emulator (the invoked function ARN it hands the
#: runtime); moto's server is started with it, so that the function's own account is moto's.
RIE_ACCOUNT = "012345678912"
#: The region of that ARN.
REGION = "us-east-1"
#: Resource types moto's CloudFormation does not create, each checked another way here.
SKIPPED_AND_CHECKED = {
    "AWS::CloudWatch::Alarm": "PutMetricAlarm with the template's properties; the metrics it "
    "watches are the ones the function printed (test_alarms_and_dashboard_...)",
    "AWS::Lambda::EventInvokeConfig": "PutFunctionEventInvokeConfig with the template's "
    "properties, read back",
    "AWS::SQS::QueuePolicy": "SetQueueAttributes(Policy) of each queue it names, read back",
    "AWS::Lambda::Alias": "CreateAlias with the template's properties when deployed "
    "(stack.create_aliases), read back with GetAlias",
    "AWS::CDK::Metadata": "the CDK's usage report (no AWS resource): only its Analytics property",
}
SAMPLE_FN = "sample-fn"
SCHEDULED = "Scheduled Event (the schedule rule's, not the API rule's)"
ALIASES = PREFIX + "aliases"


class Session:
    """boto3 clients of moto, with one set of credentials."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.region_name = REGION

    def client(self, name: str) -> Any:
        make: Any = boto3.client  # typed per service name; any service here
        return make(
            name,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@dataclass
class Step:
    name: str
    invocation: Invocation
    services: dict[str, dict[str, Any]]


@dataclass
class Run:
    app: str
    deployed: Deployed
    function_name: str
    runtime: str
    architecture: str
    steps: list[Step] = field(default_factory=list)
    log: str = ""

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def metrics(self) -> list[dict[str, Any]]:
        return [m for s in self.steps for m in s.invocation.metrics()]


def substitute(event: Any, account: str, rule_arn: str) -> Any:
    text = json.dumps(event).replace("123456789012", account)
    out = json.loads(text)
    if out.get("detail-type") == "Scheduled Event":
        out["resources"] = [rule_arn]
    return out


def sample(samples: dict[str, Any], name: str) -> dict[str, Any]:
    return copy.deepcopy(next(s["event"] for s in samples["samples"] if s["name"] == name))


def node_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.js", "exports.handler = async () => ({ statusCode: 200 });\n")
    return buf.getvalue()


def deployed_code(session: Session, d: Deployed, logical: str, cfg: dict[str, Any]) -> bytes:
    """The function's code from the emulator: the object of the assets bucket that
    GetFunction's Code.Location names (moto keeps the S3 key), checked against CodeSha256."""
    location = session.client("lambda").get_function(FunctionName=cfg["FunctionName"])["Code"][
        "Location"
    ]
    key = urlparse(location).path.lstrip("/")
    bucket = d.resolve(d.template["Resources"][logical]["Properties"]["Code"]["S3Bucket"])
    body: bytes = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert digest == cfg["CodeSha256"], (
        "the code in the bucket is the code the function was made from"
    )
    return body


def prepare_consul(consul: ConsulAgent, session: Session, env: dict[str, str]) -> None:
    """What the operator puts in place before deploying: the token and CA parameters the
    template names, a token with the documented policy, and (when the template links a
    terminating gateway it does not create) the gateway's entry."""
    consul.clean()
    token = consul.create_token(acl_policy(mesh=True))
    ssm = session.client("ssm")
    ssm.put_parameter(Name=env["CONSUL_HTTP_TOKEN_PATH"], Value=token, Type="SecureString")
    ssm.put_parameter(Name=env["CONSUL_CACERT_PATH"], Value=consul.ca_pem or "", Type="String")
    gateway = env.get("TERMINATING_GATEWAY_NAME")
    if gateway and env.get("TERMINATING_GATEWAY_CREATE") != "true":
        entry = {"Kind": "terminating-gateway", "Name": gateway, "Services": []}
        consul.put("/v1/config", entry)


def lambda_environment(
    session: Session, cfg: dict[str, Any], props: dict[str, Any], moto_url: str
) -> dict[str, str]:
    """The variables Lambda sets beside the function's own: its name, memory, log format,
    region, and the credentials of its role (STS AssumeRole on the deployed role)."""
    role = session.client("iam").get_role(RoleName=cfg["Role"].split("/")[-1])["Role"]
    assert role["Arn"] == cfg["Role"]
    creds = session.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName=cfg["FunctionName"]
    )["Credentials"]
    out = {
        "AWS_LAMBDA_FUNCTION_NAME": cfg["FunctionName"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg['FunctionName']}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg['Runtime']}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        "AWS_ENDPOINT_URL": moto_url,
    }
    if props.get("LoggingConfig", {}).get("LogFormat") == "JSON":
        out["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
    return out


def drive(lam: Any, ssm: Any, env: dict[str, str], deliver: Callable[[str, str], None]) -> None:
    """A full sync, then each CloudTrail event kind after the call it reports is made on
    moto, a failed call, a full sync with nothing to do, and one that fails (a token
    Consul refuses)."""
    role = lam.get_function_configuration(FunctionName=env["AWS_LAMBDA_FUNCTION_NAME"])["Role"]
    deliver("full sync", SCHEDULED)
    arn = lam.create_function(
        FunctionName=SAMPLE_FN,
        Runtime="nodejs22.x",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": node_zip()},
        Tags={ENABLED: "true"},
    )["FunctionArn"]
    deliver("CreateFunction", "CreateFunction20150331")
    version = lam.publish_version(FunctionName=SAMPLE_FN)["Version"]
    lam.create_alias(FunctionName=SAMPLE_FN, Name="live", FunctionVersion=version)
    deliver("CreateAlias", "CreateAlias20150331")
    lam.tag_resource(Resource=arn, Tags={ALIASES: "live"})
    deliver("TagResource", "TagResource20170331v2")
    lam.update_alias(FunctionName=SAMPLE_FN, Name="live", Description="moved")
    deliver("UpdateAlias", "UpdateAlias20150331")
    lam.untag_resource(Resource=arn, TagKeys=[ALIASES])
    deliver("UntagResource", "UntagResource20170331v2")
    lam.delete_alias(FunctionName=SAMPLE_FN, Name="live")
    deliver("DeleteAlias", "DeleteAlias20150331")
    # The tag is set, but the event says the call failed: nothing may change.
    lam.tag_resource(Resource=arn, Tags={ALIASES: "live"})
    deliver("failed call", "TagResource20170331v2 that failed (AccessDeniedException)")
    lam.untag_resource(Resource=arn, TagKeys=[ALIASES])
    lam.delete_function(FunctionName=SAMPLE_FN)
    deliver("DeleteFunction", "DeleteFunction20150331")
    deliver("steady full sync", SCHEDULED)
    name = env["CONSUL_HTTP_TOKEN_PATH"]
    token = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Value="00000000-0000-0000-0000-000000000000", Overwrite=True)
    deliver("failing full sync", SCHEDULED)
    ssm.put_parameter(Name=name, Value=token, Overwrite=True)


def start_moto(work: Path) -> MotoServer:
    """moto's server in the emulator's account."""
    os.environ["MOTO_ACCOUNT_ID"] = RIE_ACCOUNT  # read by the server started next
    try:
        return MotoServer(work).start()
    finally:
        del os.environ["MOTO_ACCOUNT_ID"]


@pytest.fixture(scope="module", params=sorted(APPS))
def run(
    request: Any, consul: ConsulAgent, workroot: Path, samples: dict[str, Any]
) -> Iterator[Run]:
    app: str = request.param
    work = workroot / app
    work.mkdir()
    moto = start_moto(work)
    function: Optional[DeployedFunction] = None
    try:
        session = Session(moto.url)
        d = deploy(session, *cloud_assembly(app))
        assert d.account == RIE_ACCOUNT
        logical = registrator_function(d)
        lam = session.client("lambda")
        cfg = lam.get_function_configuration(FunctionName=d.physical(logical))
        env = dict(cfg.get("Environment", {}).get("Variables", {}))
        prepare_consul(consul, session, env)
        # The one change to the deployed environment: the examples name a Consul at
        # consul.internal.example.com; this one is on 127.0.0.1 (HTTPS, its CA in SSM).
        assert env["CONSUL_HTTP_ADDR"].startswith("https://"), env["CONSUL_HTTP_ADDR"]
        env["CONSUL_HTTP_ADDR"] = consul.addr
        props = d.template["Resources"][logical]["Properties"]
        function = DeployedFunction(
            rie=os.environ["DEPLOY_RIE"],
            runtime=Runtime.load(cfg["Runtime"]),
            code_zip=deployed_code(session, d, logical, cfg),
            handler=cfg["Handler"],
            env={**env, **lambda_environment(session, cfg, props, moto.url)},
            workdir=work / "function",
            timeout_s=int(cfg["Timeout"]),
        ).start()
        schedule = next(
            k
            for k, v in d.of_type("AWS::Events::Rule").items()
            if "ScheduleExpression" in v["Properties"]
        )
        rule_arn = d.get_att(schedule, "Arn")
        arch = (cfg.get("Architectures") or ["x86_64"])[0]
        r = Run(app, d, cfg["FunctionName"], cfg["Runtime"], arch)
        running = function

        def deliver(name: str, sample_name: str) -> None:
            event = substitute(sample(samples, sample_name), d.account, rule_arn)
            r.steps.append(Step(name, running.invoke(event), consul.managed_services()))

        drive(lam, session.client("ssm"), running.env, deliver)
        r.log = function.log_tail()
        yield r
    finally:
        if function is not None:
            function.stop()
        moto.stop()


def test_every_template_resource_type_is_created_or_checked_another_way(run: Run) -> None:
    d = run.deployed
    skipped = d.skipped_types()
    unexpected = {t: ids for t, ids in skipped.items() if t not in SKIPPED_AND_CHECKED}
    assert not unexpected, f"moto's CloudFormation skipped {unexpected}"
    created = {d.template["Resources"][k]["Type"] for k in d.resources}
    assert {
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
    } <= created


def test_the_skipped_types_are_accepted_by_their_apis(run: Run) -> None:
    d = run.deployed
    session = d.session
    for logical, r in d.of_type("AWS::CloudWatch::Alarm").items():
        props = d.resolve(r["Properties"])
        cw = session.client("cloudwatch")
        name = f"{d.name}-{logical}"
        args = {k: v for k, v in props.items() if k not in ("AlarmName",)}
        if "Dimensions" in args:
            args["Dimensions"] = [
                {"Name": x["Name"], "Value": x["Value"]} for x in args["Dimensions"]
            ]
        for q in args.get("Metrics", []):
            if "ReturnData" not in q:
                q["ReturnData"] = False
        cw.put_metric_alarm(AlarmName=name, **args)
        got = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        assert len(got) == 1, got
        assert got[0]["Threshold"] == props["Threshold"], got
    for r in d.of_type("AWS::Lambda::EventInvokeConfig").values():
        props = d.resolve(r["Properties"])
        lam = session.client("lambda")
        lam.put_function_event_invoke_config(
            FunctionName=props["FunctionName"],
            Qualifier=props["Qualifier"],
            MaximumRetryAttempts=props["MaximumRetryAttempts"],
            MaximumEventAgeInSeconds=props["MaximumEventAgeInSeconds"],
            DestinationConfig=props["DestinationConfig"],
        )
        got = lam.get_function_event_invoke_config(
            FunctionName=props["FunctionName"], Qualifier=props["Qualifier"]
        )
        assert got["MaximumRetryAttempts"] == props["MaximumRetryAttempts"]
        assert got["DestinationConfig"] == props["DestinationConfig"]
        queue = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert queue in {d.get_att(k, "Arn") for k in d.of_type("AWS::SQS::Queue")}, queue
    for r in d.of_type("AWS::Lambda::Alias").values():
        props = d.resolve(r["Properties"])
        got = session.client("lambda").get_alias(
            FunctionName=props["FunctionName"], Name=props["Name"]
        )
        assert got["FunctionVersion"] == props["FunctionVersion"], got


def test_the_cdk_metadata_is_only_the_usage_report(run: Run) -> None:
    for r in run.deployed.of_type("AWS::CDK::Metadata").values():
        assert set(r["Properties"]) == {"Analytics"}, r


def test_the_queue_policies_are_accepted_by_sqs(run: Run) -> None:
    d = run.deployed
    sqs = d.session.client("sqs")
    policies = d.of_type("AWS::SQS::QueuePolicy")
    assert policies, "the dead-letter queue has a policy (SSL only, EventBridge may send)"
    for r in policies.values():
        props = d.resolve(r["Properties"])
        document = json.dumps(props["PolicyDocument"])
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
            got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
            assert json.loads(got["Attributes"]["Policy"]) == props["PolicyDocument"]


def services(step: Step) -> set[str]:
    return set(step.services)


def stack_services(d: Deployed) -> set[str]:
    """The services the stack's tags ask for: each function tagged enabled, and NAME-ALIAS
    for each alias its tags name (the template declares each alias: the tests check that)."""
    out = set()
    for r in d.of_type("AWS::Lambda::Function").values():
        props = r["Properties"]
        tags = {t["Key"]: d.resolve(t["Value"]) for t in props.get("Tags", [])}
        if tags.get(ENABLED) != "true":
            continue
        name = d.resolve(props["FunctionName"])
        out.add(name)
        out |= {f"{name}-{a}" for a in tags.get(ALIASES, "").split("+") if a}
    return out


def test_the_deployed_function_syncs_on_each_event(run: Run) -> None:
    """The deployed function on its template's runtime: a full sync, each event kind, a
    failed call, a steady full sync; Consul after each."""
    expected_runtime = {"ts": "nodejs22.x", "python": "nodejs22.x", "java": "python3.12"}[run.app]
    assert run.runtime == expected_runtime
    for s in run.steps[:-1]:
        assert s.invocation.status == 200, (s.name, s.invocation.body, run.log)
        assert s.invocation.error_type is None, (
            s.name,
            s.invocation.body,
            run.log,
        )
        assert s.invocation.body["ok"] is True, (s.name, s.invocation.body)
    stack_fns = stack_services(run.deployed)
    # Every example app: `billing` with its alias `live` (declared), and `orders`.
    assert {"billing", "billing-live", "orders"} <= stack_fns, stack_fns
    aliases = {r["Properties"]["Name"] for r in run.deployed.of_type("AWS::Lambda::Alias").values()}
    assert aliases == {"live"}, aliases
    verdicts = {s.name: s.invocation.body["verdict"] for s in run.steps[:-1]}
    assert services(run.step("full sync")) == stack_fns
    assert run.step("full sync").invocation.body["summary"]["create"] == len(stack_fns)
    assert services(run.step("CreateFunction")) == stack_fns | {SAMPLE_FN}
    assert services(run.step("CreateAlias")) == stack_fns | {SAMPLE_FN}
    assert services(run.step("TagResource")) == stack_fns | {SAMPLE_FN, f"{SAMPLE_FN}-live"}
    assert services(run.step("UpdateAlias")) == stack_fns | {SAMPLE_FN, f"{SAMPLE_FN}-live"}
    assert services(run.step("UntagResource")) == stack_fns | {SAMPLE_FN}
    assert services(run.step("DeleteAlias")) == stack_fns | {SAMPLE_FN}
    assert verdicts["failed call"] == "ignored"
    assert services(run.step("failed call")) == stack_fns | {SAMPLE_FN}
    assert services(run.step("DeleteFunction")) == stack_fns
    steady = run.step("steady full sync").invocation.body
    assert (
        steady["summary"]["create"]
        == steady["summary"]["update"]
        == steady["summary"]["delete"]
        == 0
    ), steady
    assert services(run.step("steady full sync")) == stack_fns


def test_a_failed_sync_is_an_invocation_error_and_changes_nothing(run: Run) -> None:
    """A sync that fails raises: Lambda records an invocation error (EventBridge's
    asynchronous invocation is then retried), and Consul is left as it was."""
    failing = run.step("failing full sync")
    assert run.steps[-1] is failing
    # Each host's error for a failed sync (Python: SyncFailed; Node: RegistratorError, code
    # sync_failed).
    expected = "SyncFailed" if run.runtime.startswith("python") else "RegistratorError"
    assert failing.invocation.error_type == expected, (failing.invocation.body, run.log)
    assert "403" in failing.invocation.body["errorMessage"], failing.invocation.body
    assert services(failing) == services(run.step("steady full sync"))
    (m,) = failing.invocation.metrics()
    assert m["SyncFailed"] == 1
    assert m["Trigger"] == "fullSync"


def test_one_metrics_line_per_invocation_with_the_registrators_own_name(run: Run) -> None:
    for s in run.steps:
        m = s.invocation.metrics()
        assert len(m) == 1, (s.name, s.invocation.output)
        assert m[0]["FunctionName"] == run.function_name
    created = len(stack_services(run.deployed))
    assert run.step("full sync").invocation.metrics()[0]["ServicesCreated"] == created
    assert run.step("CreateFunction").invocation.metrics()[0]["Trigger"] == "function"


def metric_specs(d: Deployed) -> list[tuple[str, str, str, dict[str, str]]]:
    """(where, namespace, metric name, dimensions) of every metric the alarms and the
    dashboard watch."""
    out = []
    for logical, r in d.of_type("AWS::CloudWatch::Alarm").items():
        props = d.resolve(r["Properties"])
        stats = [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
        if "MetricName" in props:
            stats.append(props)
        for m in stats:
            dims = {x["Name"]: x["Value"] for x in m.get("Dimensions", [])}
            out.append((f"alarm {logical}", m["Namespace"], m["MetricName"], dims))
    for logical, r in d.of_type("AWS::CloudWatch::Dashboard").items():
        body = json.loads(d.resolve(r["Properties"]["DashboardBody"]))
        for w in body["widgets"]:
            for m in w.get("properties", {}).get("metrics", []):
                names = [x for x in m if isinstance(x, str)]
                if not names:
                    continue  # a math expression over the metrics listed beside it
                assert names[0] != "...", "a repeated-rendering shorthand this test does not read"
                ns, metric, rest = names[0], names[1], names[2:]
                out.append((f"dashboard {logical}", ns, metric, dict(zip(rest[::2], rest[1::2]))))
    return out


def emits(doc: dict[str, Any], ns: str, metric: str, dims: dict[str, str]) -> bool:
    """Whether an EMF document holds ``metric`` in ``ns`` under exactly these dimensions."""
    cw = doc["_aws"]["CloudWatchMetrics"][0]
    return (
        cw["Namespace"] == ns
        and metric in {m["Name"] for m in cw["Metrics"]}
        and sorted(dims) in [sorted(x) for x in cw["Dimensions"]]
        and all(doc.get(k) == v for k, v in dims.items())
    )


def test_alarms_and_dashboard_watch_what_the_function_emits(run: Run) -> None:
    d = run.deployed
    emitted = run.metrics()
    ours = [s for s in metric_specs(d) if s[1] == "ConsulLambdaSync"]
    assert any(s[0].startswith("alarm") for s in ours), "an alarm watches the registrator's metrics"
    for where, ns, metric, dims in ours:
        assert dims.get("FunctionName") == run.function_name, (where, metric, dims)
        assert any(emits(doc, ns, metric, dims) for doc in emitted), (
            f"{where} watches {ns} {metric} {dims}: never emitted"
        )
    others = [s for s in metric_specs(d) if s[1] != "ConsulLambdaSync"]
    for where, ns, _metric, _dims in others:
        assert ns in ("AWS/Lambda", "AWS/SQS"), (where, ns)
