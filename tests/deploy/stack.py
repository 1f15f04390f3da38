"""A synthesized CDK app (its cloud assembly: ``cdk.out``) deployed into moto's CloudFormation
the way ``cdk deploy`` does it on a bootstrapped account: the bootstrap version parameter in
Parameter Store, the file assets uploaded to the bootstrap bucket under the keys the
template names, then CreateStack with the template and its capabilities.

moto creates what it implements and skips other resource types with a warning; ``Deployed``
compares the template's types with what was created, and ``resolve`` turns the template's
intrinsic functions into the values of this deployment (for the skipped types, which the
tests check another way).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

# The CDK's default bootstrap qualifier, and the version `cdk bootstrap` writes today (the
# templates' CheckBootstrapVersion rule asks for 6 or more).
QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"


def zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(path).as_posix())
    return buf.getvalue()


def sub_placeholders(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


@dataclass
class Deployed:
    name: str
    template: dict[str, Any]
    resources: dict[str, dict[str, Any]]  # logical id -> StackResourceSummary
    outputs: dict[str, str]
    account: str
    region: str
    session: Any
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def physical(self, logical: str) -> str:
        return str(self.resources[logical]["PhysicalResourceId"])

    def skipped_types(self) -> dict[str, list[str]]:
        """Template resource types (with their logical ids) that the deployment did not
        create."""
        out: dict[str, list[str]] = {}
        for logical, r in self.template["Resources"].items():
            if logical not in self.resources:
                out.setdefault(r["Type"], []).append(logical)
        return out

    def get_att(self, logical: str, attribute: str) -> Any:
        type_ = self.template["Resources"][logical]["Type"]
        pid = self.physical(logical)
        if type_ == "AWS::SQS::Queue" and attribute == "Arn":
            url = pid
            attrs = self.session.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )
            return attrs["Attributes"]["QueueArn"]
        if type_ == "AWS::Lambda::Function" and attribute == "Arn":
            return self.session.client("lambda").get_function(FunctionName=pid)["Configuration"][
                "FunctionArn"
            ]
        if type_ == "AWS::SQS::Queue" and attribute == "QueueName":
            return pid.rstrip("/").rsplit("/", 1)[-1]
        if type_ == "AWS::Events::Rule" and attribute == "Arn":
            return self.session.client("events").describe_rule(Name=pid.split("|")[-1])["Arn"]
        if type_ == "AWS::IAM::Role" and attribute == "Arn":
            return self.session.client("iam").get_role(RoleName=pid)["Role"]["Arn"]
        if type_ == "AWS::Lambda::Version" and attribute == "Version":
            return self.published_version(logical)
        raise AssertionError(f"Fn::GetAtt {logical}.{attribute} ({type_}) is not resolved here")

    def published_version(self, logical: str) -> str:
        """The version an AWS::Lambda::Version resource published (moto's CloudFormation
        publishes it but keeps no physical id): its function's only published version."""
        props = self.template["Resources"][logical]["Properties"]
        function = self.resolve(props["FunctionName"])
        lam = self.session.client("lambda")
        versions = lam.list_versions_by_function(FunctionName=function)["Versions"]
        published = [v["Version"] for v in versions if v["Version"] != "$LATEST"]
        assert len(published) == 1, (logical, published)
        return str(published[0])

    def resolve(self, value: Any) -> Any:
        """The template value with Ref, Fn::GetAtt, Fn::Join and Fn::Sub resolved."""
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
        }
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            ref = value["Ref"]
            return pseudo[ref] if ref in pseudo else self.physical(ref)
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            return self.get_att(logical, attribute)
        if set(value) == {"Fn::Join"}:
            sep, parts = value["Fn::Join"]
            return sep.join(str(self.resolve(p)) for p in parts)
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            assert isinstance(text, str), value
            for k, v in pseudo.items():
                text = text.replace("${" + k + "}", v)
            return text
        return {k: self.resolve(v) for k, v in value.items()}


def deploy(session: Any, cdk_out: Path, stack: str) -> Deployed:
    """Deploys ``stack`` of the cloud assembly in ``cdk_out`` into the moto ``session``."""
    account = session.client("sts").get_caller_identity()["Account"]
    region = session.region_name
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    assets = json.loads((cdk_out / f"{stack}.assets.json").read_text())

    # Bootstrap: the version parameter and the assets bucket (what `cdk bootstrap` makes).
    session.client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{QUALIFIER}/version",
        Value=BOOTSTRAP_VERSION,
        Type="String",
        Overwrite=True,
    )
    s3 = session.client("s3")
    bucket = f"cdk-{QUALIFIER}-assets-{account}-{region}"
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)

    # The file assets (`cdk deploy` publishes them before the stack).
    for asset in assets.get("files", {}).values():
        if asset["source"]["path"].endswith(".template.json"):
            continue  # the template itself, passed as TemplateBody below
        source = cdk_out / asset["source"]["path"]
        body = zip_dir(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for dest in asset["destinations"].values():
            s3.put_object(
                Bucket=sub_placeholders(dest["bucketName"], account, region),
                Key=sub_placeholders(dest["objectKey"], account, region),
                Body=body,
            )
    assert not assets.get("dockerImages"), "docker image assets are not deployed here"

    cfn = session.client("cloudformation")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert desc["StackStatus"] == "CREATE_COMPLETE", desc
    resources: dict[str, dict[str, Any]] = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r.get("LogicalResourceId"):  # moto lists a skipped resource as an empty entry
                resources[r["LogicalResourceId"]] = r
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    d = Deployed(stack, template, resources, outputs, account, region, session)
    apply_function_tags(d)
    create_aliases(d)
    return d


def apply_function_tags(d: Deployed) -> None:
    """moto's CloudFormation creates an AWS::Lambda::Function without the template's Tags
    (CloudFormation tags it); they are applied here with TagResource, as CloudFormation would,
    and noted in ``d.warnings``. Tags moto did apply are left alone."""
    lam = d.session.client("lambda")
    for logical, r in d.of_type("AWS::Lambda::Function").items():
        wanted = {t["Key"]: d.resolve(t["Value"]) for t in r["Properties"].get("Tags", [])}
        if not wanted:
            continue
        fn = lam.get_function(FunctionName=d.physical(logical))
        have = fn.get("Tags") or {}
        missing = {k: v for k, v in wanted.items() if have.get(k) != v}
        if missing:
            lam.tag_resource(Resource=fn["Configuration"]["FunctionArn"], Tags=missing)
            d.warnings.append(
                f"{logical}: moto's CloudFormation left out the tags {sorted(missing)}"
            )


def create_aliases(d: Deployed) -> None:
    """moto's CloudFormation skips AWS::Lambda::Alias; each alias of the template is made
    here with CreateAlias from its resolved properties, as CloudFormation would, and noted in
    ``d.warnings``. The registrator asks ListAliases before it registers an alias service."""
    lam = d.session.client("lambda")
    for logical, r in d.of_type("AWS::Lambda::Alias").items():
        if logical in d.resources:
            continue
        props = d.resolve(r["Properties"])
        lam.create_alias(
            FunctionName=props["FunctionName"],
            Name=props["Name"],
            FunctionVersion=props["FunctionVersion"],
            **({"Description": props["Description"]} if "Description" in props else {}),
        )
        d.warnings.append(f"{logical}: moto's CloudFormation does not create aliases")


def registrator_function(d: Deployed) -> str:
    """The logical id of the registrator's function (the construct's description)."""
    ids = [
        k
        for k, v in d.of_type("AWS::Lambda::Function").items()
        if "consul-lambda-sync" in str(v["Properties"].get("Description", ""))
    ]
    assert len(ids) == 1, ids
    return ids[0]
