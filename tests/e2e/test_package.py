"""The Lambda deployment package (scripts/build-lambda-zip.sh) against the real servers.

The zip is unpacked and its handler runs in a fresh interpreter whose first path
entry is the package directory, as in Lambda (boto3 comes from the environment,
as the Lambda runtime provides it). ``CLS_LAMBDA_ZIP`` names a zip built already
(scripts/test-e2e.sh builds it); otherwise the script is run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from typing import TYPE_CHECKING

import pytest
from cls_support import run_script

from harness import MANAGED_TAG, Harness

if TYPE_CHECKING:
    from pathlib import Path

RUN_HANDLER = """
import json, sys
import consul_lambda_sync.host.handler as h
assert h.__file__.startswith(sys.argv[1]), h.__file__
print(json.dumps(h.handler(json.load(sys.stdin), None)))
"""


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    zip_path = os.environ.get("CLS_LAMBDA_ZIP")
    if not zip_path:
        zip_path = run_script("build-lambda-zip.sh", timeout=1800)
    target = tmp_path_factory.mktemp("lambda-package")
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(target)
    return target


def test_the_zip_handler_syncs(h: Harness, package_dir: Path) -> None:
    h.enabled("zipped", aliases="live")
    env = h.env()
    env["PYTHONPATH"] = str(package_dir)
    proc = subprocess.run(
        [sys.executable, "-c", RUN_HANDLER, str(package_dir)],
        input=json.dumps(h.schedule()),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=package_dir,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"]
    assert summary["summary"]["create"] == 2
    # No Lambda context here: the engine asks STS for the account (and counts the call);
    # the alias service to create is checked first (the function's ListAliases names "live").
    assert summary["requests"]["aws"]["calls"] == {
        "GetCallerIdentity": 1,
        "GetResources": 1,
        "ListAliases": 1,
    }
    services = h.consul.services()
    assert sorted(services) == ["zipped", "zipped-live"]
    assert all(s["Tags"] == [MANAGED_TAG] for s in services.values())
