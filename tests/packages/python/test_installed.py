"""The installed artefact, not the source tree, is what the suite imports.

scripts/test-packages.sh runs this beside bindings/python/tests against a wheel
installed into a clean virtual environment, and against an unpacked Lambda zip
(then CONSUL_LAMBDA_SYNC_EXPECT_DIR names the unpacked folder).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import consul_lambda_sync
from consul_lambda_sync import _native

ELF_MACHINES = {62: "x86_64", 183: "aarch64"}


def _origin() -> Path:
    expected = os.environ.get("CONSUL_LAMBDA_SYNC_EXPECT_DIR")
    return Path(expected).resolve() if expected else Path(sys.prefix).resolve()


def test_package_comes_from_the_artefact() -> None:
    package = Path(consul_lambda_sync.__file__).resolve()
    assert _origin() in package.parents, f"{package} is not under {_origin()}"
    repo = os.environ.get("CONSUL_LAMBDA_SYNC_REPO")
    if repo:
        assert Path(repo).resolve() / "bindings" not in package.parents, package


def test_extension_is_abi3_for_this_machine() -> None:
    native = Path(_native.__file__)
    assert native.name == "_native.abi3.so", native.name
    head = native.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    machine = int.from_bytes(head[18:20], "little")
    assert ELF_MACHINES.get(machine) == platform.machine(), machine


def test_core_answers() -> None:
    assert isinstance(consul_lambda_sync.version(), str)
    codes = [c["code"] for c in consul_lambda_sync.error_codes()]
    assert "invalid_input" in codes


def test_metadata_license_expression_and_urls() -> None:
    if os.environ.get("CONSUL_LAMBDA_SYNC_EXPECT_DIR"):
        return  # an unpacked zip or wheel: no installed metadata
    from importlib.metadata import metadata

    meta = metadata("consul-lambda-sync")
    assert meta["License-Expression"] == "MPL-2.0"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Changelog", "Issues"} <= set(urls), urls
