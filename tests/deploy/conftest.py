"""Fixtures of the deployment tests: the example apps' cloud assemblies (synthesized by
scripts/test-cdk.sh into target/cdk/synth/<app>), the CloudTrail samples, a Consul dev agent
(ACLs and HTTPS, as the examples configure the registrator) and moto's server, started here.

scripts/test-deploy.sh sets DEPLOY_RUNTIMES (the local Lambda runtimes), DEPLOY_RIE (AWS's
Runtime Interface Emulator) and DEPLOY_RULER_CP (event-ruler's classpath). A missing piece is
an install problem: the fixtures fail, they never skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cls_support import REPO, ConsulAgent, consul_binary, make_workdir, remove_workdir

if TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
#: The example apps: their folder under target/cdk/synth and their stack.
APPS = {"ts": "ConsulLambdaExample", "python": "ConsulLambdaPython", "java": "ConsulLambdaJava"}


def synth_dir() -> Path:
    return Path(os.environ.get("DEPLOY_SYNTH_DIR") or REPO / "target" / "cdk" / "synth")


def cloud_assembly(app: str) -> tuple[Path, str]:
    out = synth_dir() / app
    stack = APPS[app]
    if not (out / f"{stack}.template.json").is_file():
        raise AssertionError(f"no synthesized {stack} in {out}: run scripts/test-cdk.sh first")
    return out, stack


def template(app: str) -> dict[str, Any]:
    out, stack = cloud_assembly(app)
    return dict(json.loads((out / f"{stack}.template.json").read_text()))


@pytest.fixture(scope="session")
def samples() -> dict[str, Any]:
    return dict(json.loads((HERE / "cloudtrail-samples.json").read_text()))


@pytest.fixture(scope="session")
def workroot() -> Iterator[Path]:
    path = make_workdir("deploy")
    yield path
    if not os.environ.get("KEEP_WORK"):
        remove_workdir(path)


@pytest.fixture(scope="session")
def consul(workroot: Path) -> Iterator[ConsulAgent]:
    agent = ConsulAgent(consul_binary(), workroot / "consul", acl=True, tls=True).start()
    yield agent
    agent.stop()
