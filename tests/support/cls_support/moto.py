"""moto's server (fake AWS): plain ``python -m moto.server``, or seeded
(:mod:`cls_support.moto_seeded`: the same application plus a ``/_bench/*`` side
door that creates thousands of functions at once)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import requests

from .constants import REGION
from .procs import free_port, spawn, stop_process, wait_for

if TYPE_CHECKING:
    from pathlib import Path

_M = TypeVar("_M", bound="MotoServer")


class MotoServer:
    """``python -m moto.server`` on a free loopback port."""

    def __init__(
        self, workdir: Path, python: str = sys.executable, port: Optional[int] = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"moto-{self.port}.log"
        self.python = python
        self.proc: Optional[Any] = None
        self.session = requests.Session()

    def argv(self) -> list[str]:
        return [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self: _M) -> _M:
        self.proc = spawn(self.argv(), self.log)
        try:
            wait_for(
                "moto server",
                lambda: self.session.get(self.url + "/moto-api/", timeout=2).ok,
                60,
                self.proc,
                self.log,
            )
        except BaseException:
            self.stop()  # the caller never gets the server: nothing else would stop it
            raise
        return self

    def reset(self) -> None:
        self.session.post(self.url + "/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        stop_process(self.proc)

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.url}


class MotoSeeded(MotoServer):
    """cls_support/moto_seeded.py: moto's HTTP API plus /_bench/seed|churn|desired."""

    def argv(self) -> list[str]:
        return [self.python, "-m", "cls_support.moto_seeded", "--port", str(self.port)]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.session.request(method, self.url + path, json=body, timeout=600)
        if not r.ok:
            raise RuntimeError(f"moto {method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def seed(self, functions: int) -> dict[str, Any]:
        return dict(self._call("POST", "/_bench/seed", {"functions": functions}))

    def churn(self) -> dict[str, Any]:
        return dict(self._call("POST", "/_bench/churn", {}))

    def desired(self) -> dict[str, dict[str, Any]]:
        return dict(self._call("GET", "/_bench/desired")["services"])

    def reference_pages(self) -> int:
        """Pages a GetResources listing of the functions takes at 100 resources a page,
        asked directly (not through the proxy): ceil(N/100) on AWS; moto also cuts a
        page at 100 tags, so with several tags per function it takes more."""
        import boto3

        client = boto3.client(
            "resourcegroupstaggingapi",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        pages, token = 0, None
        while True:
            kwargs: dict[str, Any] = {
                "ResourceTypeFilters": ["lambda:function"],
                "ResourcesPerPage": 100,
            }
            if token:
                kwargs["PaginationToken"] = token
            out = client.get_resources(**kwargs)
            pages += 1
            token = out.get("PaginationToken")
            if not token:
                return pages
