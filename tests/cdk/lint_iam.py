#!/usr/bin/env python3
"""Lints the IAM policies of the registrator's role in a synthesized template with parliament.

Every policy document attached to the role of the registrator function (its AWS::IAM::Policy
resources and the role's inline policies) is rendered as IAM sees it after deployment: the
CloudFormation intrinsics are resolved to a fixed partition, region and account, and each
`Fn::GetAtt [X, Arn]` / `Ref X` to an ARN or name of X's resource type. Each document then goes
through parliament's auditors, its community auditors included, and every finding of severity
LOW or above fails the run (there is no allowlist: a finding is fixed in the construct).

The role's managed policies cannot be linted here; they are checked to be exactly AWS's Lambda
execution policies (logs, and ENIs with a VPC).

Usage: lint_iam.py TEMPLATE.json      (run by the python of scripts/requirements/iam-lint.txt)
Prints one "ok"/"not ok" line per document and exits 1 on any finding.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports pkg_resources, which warns
    import parliament
    from parliament.cli import is_finding_filtered

PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "111122223333"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "Stack",
}
# `Fn::GetAtt [X, Arn]` by X's type ({id}: the logical ID, a stand-in for the generated name).
ARN_OF_TYPE = {
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{id}",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/00000000-0000-4000-8000-000000000000",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{id}:*",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{id}",
    "AWS::SSM::Parameter": "arn:{p}:ssm:{r}:{a}:parameter/{id}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{id}",
}
# `Ref X` by X's type: what CloudFormation returns for it.
REF_OF_TYPE = {
    "AWS::SSM::Parameter": "/{id}",
    "AWS::SQS::Queue": "https://sqs.{r}.amazonaws.com/{a}/{id}",
    "AWS::KMS::Key": "00000000-0000-4000-8000-000000000000",
    "AWS::Lambda::Function": "{id}",
    "AWS::Logs::LogGroup": "{id}",
}
EXECUTION_POLICIES = {
    f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}


class Unresolved(Exception):
    pass


def resolver(resources: dict[str, Any]) -> Callable[[Any], Any]:
    """Resolves the intrinsics of a value of this template (raises Unresolved)."""

    def fill(template: str, logical_id: str) -> str:
        return template.format(p=PARTITION, r=REGION, a=ACCOUNT, id=logical_id)

    def resolve(v: Any) -> Any:
        if isinstance(v, list):
            return [resolve(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            ((k, x),) = v.items()
            if k == "Ref":
                if x in PSEUDO:
                    return PSEUDO[x]
                kind = resources.get(x, {}).get("Type")
                if kind in REF_OF_TYPE:
                    return fill(REF_OF_TYPE[kind], x)
                raise Unresolved(f"Ref {x} ({kind})")
            if k == "Fn::GetAtt":
                target, attr = x if isinstance(x, list) else x.split(".", 1)
                kind = resources.get(target, {}).get("Type")
                if attr == "Arn" and kind in ARN_OF_TYPE:
                    return fill(ARN_OF_TYPE[kind], target)
                raise Unresolved(f"Fn::GetAtt {target}.{attr} ({kind})")
            if k == "Fn::Join":
                sep, parts = x
                return sep.join(str(resolve(p)) for p in parts)
            if k == "Fn::Sub":
                text = x if isinstance(x, str) else x[0]
                return re.sub(
                    r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)})), text
                )
            if k.startswith("Fn::"):
                raise Unresolved(k)
        return {k: resolve(x) for k, x in v.items()}

    return resolve


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 3
    with open(sys.argv[1], encoding="utf-8") as f:
        template = json.load(f)
    resources: dict[str, Any] = template.get("Resources", {})
    resolve = resolver(resources)
    registrators = [
        (i, r)
        for i, r in resources.items()
        if r.get("Type") == "AWS::Lambda::Function"
        and "consul-lambda-sync" in str(r.get("Properties", {}).get("Description", ""))
    ]
    if len(registrators) != 1:
        print(
            f"not ok 1 - one registrator function\n  # found {[i for i, _ in registrators]}"
        )
        return 1
    role_id = registrators[0][1]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]

    documents: list[tuple[str, Any]] = [
        (f"{i} (AWS::IAM::Policy)", r["Properties"]["PolicyDocument"])
        for i, r in resources.items()
        if r.get("Type") == "AWS::IAM::Policy"
        and {"Ref": role_id} in r.get("Properties", {}).get("Roles", [])
    ]
    documents += [
        (f"{role_id} inline {p.get('PolicyName')}", p["PolicyDocument"])
        for p in role.get("Policies", [])
    ]

    # As parliament's CLI does with --include-community-auditors: their findings' settings.
    parliament.override_config(
        Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    )
    failed = 0
    n = 0

    def result(name: str, problems: list[str]) -> None:
        nonlocal failed, n
        n += 1
        if problems:
            failed += 1
            print(f"not ok {n} - {name}")
            for p in problems:
                print(f"  # {p}")
        else:
            print(f"ok {n} - {name}")

    result(
        f"the role {role_id} has policy documents", [] if documents else ["none found"]
    )
    for name, document in documents:
        try:
            text = json.dumps(resolve(document), indent=1)
        except Unresolved as e:
            result(
                f"parliament: {name}",
                [f"cannot resolve {e}: teach tests/cdk/lint_iam.py its ARN"],
            )
            continue
        policy = parliament.analyze_policy_string(
            text, name, include_community_auditors=True
        )
        findings = [parliament.enhance_finding(f) for f in policy.findings]
        problems = [
            f"{f.severity} {f.issue}: {f.title} - {f.detail} - {f.location}"
            for f in findings
            if not is_finding_filtered(f, "LOW")
        ]
        statements = document.get("Statement", [])
        count = len(statements) if isinstance(statements, list) else 1
        result(
            f"parliament {parliament.__version__} (+ community): {name}, {count} statements",
            problems,
        )

    managed = {str(resolve(a)) for a in role.get("ManagedPolicyArns", [])}
    result(
        "managed policies: only AWS's Lambda execution policies",
        [f"unexpected {sorted(managed - EXECUTION_POLICIES)}"]
        if managed - EXECUTION_POLICIES
        else [],
    )
    print(f"1..{n}")
    print(f"# {n - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
