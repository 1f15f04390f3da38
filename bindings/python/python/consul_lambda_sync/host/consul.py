"""Consul's HTTP API over ``requests``: observation reads and the plan's writes.

Every request goes through one :class:`requests.Session` that retries with
exponential backoff and jitter on connection errors and on 429/500/502/503/504,
for GET, PUT and DELETE alike (the registrator's writes are idempotent). The ACL
token travels in the ``X-Consul-Token`` header and is never logged.
"""

from __future__ import annotations

import collections
import inspect
import json
import re
import threading
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .log import clip

if TYPE_CHECKING:
    from collections.abc import Mapping

RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_METHODS = frozenset({"GET", "PUT", "DELETE"})


class ConsulError(Exception):
    """A Consul request failed. ``unreachable``: no HTTP answer at all (or TLS failed)."""

    def __init__(
        self, message: str, *, status: Optional[int] = None, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


def _retry(total: int, backoff: float) -> Retry:
    kwargs: dict[str, Any] = {
        "total": total,
        "connect": total,
        "read": total,
        "status": total,
        "backoff_factor": backoff,
        "status_forcelist": RETRY_STATUSES,
        "allowed_methods": RETRY_METHODS,
        "raise_on_status": False,
        "respect_retry_after_header": True,
    }
    # urllib3 2 adds jitter; urllib3 1.26 (botocore's pin on Python < 3.10) does not.
    if "backoff_jitter" in inspect.signature(Retry.__init__).parameters:
        kwargs["backoff_jitter"] = backoff
    return Retry(**kwargs)


class _Adapter(HTTPAdapter):
    """An adapter that can check the server certificate against another name."""

    def __init__(self, server_name: Optional[str] = None, **kwargs: Any) -> None:
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._server_name:
            kwargs["server_hostname"] = self._server_name
            kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _reason(err: BaseException) -> str:
    """The short cause of a connection failure (``[Errno 111] Connection refused``)."""
    text = str(err)
    m = re.search(r"\[SSL: [A-Z0-9_]+\][^'\")(]*|certificate verify failed[^'\")(]*", text)
    if m:
        return m.group(0).strip()
    m = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if m:
        return m.group(0).strip()
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    return clip(text, 200)


def base_url(address: str, ssl: bool) -> str:
    """``CONSUL_HTTP_ADDR`` as a base URL: a bare ``host:port`` gets ``https`` if ``ssl``."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = ("https://" if ssl else "http://") + address
    return address


class ConsulClient:
    """A small Consul HTTP API client that counts its reads and writes."""

    def __init__(
        self,
        address: str,
        *,
        token: Optional[str] = None,
        verify: Union[bool, str] = True,
        cert: Optional[tuple[str, str]] = None,
        server_name: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.25,
        pool_size: int = 16,
    ) -> None:
        self.base = address.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        adapter = _Adapter(
            server_name=server_name,
            max_retries=_retry(retries, backoff),
            pool_connections=pool_size,
            pool_maxsize=pool_size,
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Passed with every request too: requests lets REQUESTS_CA_BUNDLE and
        # CURL_CA_BUNDLE override a session's ``verify`` (psf/requests#3829).
        self.verify = verify
        self.cert = cert
        self.session.verify = verify
        if cert:
            self.session.cert = cert
        self.session.headers["User-Agent"] = "consul-lambda-sync"
        if token:
            self.session.headers["X-Consul-Token"] = token
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        token: Optional[str] = None,
        ca_file: Optional[str] = None,
        timeout: float = 10.0,
    ) -> ConsulClient:
        """Builds a client from the core's configuration (``config_from_env`` output).

        ``token`` and ``ca_file`` override ``CONSUL_HTTP_TOKEN`` and ``CONSUL_CACERT``
        (they come from Parameter Store when the ``*_PATH`` variables are set).
        """
        verify: Union[bool, str] = bool(config.get("consulHttpSslVerify", True))
        ca = ca_file or config.get("consulCacert")
        if verify and ca:
            verify = str(ca)
        cert = None
        if config.get("consulClientCert") and config.get("consulClientKey"):
            cert = (str(config["consulClientCert"]), str(config["consulClientKey"]))
        return cls(
            base_url(str(config.get("consulHttpAddr") or ""), bool(config.get("consulHttpSsl"))),
            token=token,
            verify=verify,
            cert=cert,
            server_name=config.get("consulTlsServerName"),
            timeout=timeout,
        )

    # -- transport ---------------------------------------------------------------

    @property
    def reads(self) -> int:
        return self.counts["GET"]

    @property
    def writes(self) -> int:
        return sum(n for m, n in self.counts.items() if m != "GET")

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, str]] = None,
        body: Any = None,
        *,
        allow_404: bool = False,
    ) -> Any:
        """Sends one request and returns the decoded JSON body (None for 404 if allowed)."""
        method = method.upper()
        with self._lock:
            self.counts[method] += 1
        url = self.base + path
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            resp = self.session.request(
                method,
                url,
                params=dict(query or {}),
                data=data,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                cert=self.cert,
            )
        except requests.exceptions.SSLError as e:
            raise ConsulError(
                f"TLS connection to Consul at {self.base} failed ({_reason(e)})",
                unreachable=True,
            ) from e
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise ConsulError(
                f"Consul at {self.base} is unreachable ({_reason(e)})", unreachable=True
            ) from e
        except requests.exceptions.RequestException as e:
            raise ConsulError(f"{method} {path} failed: {clip(e, 300)}") from e
        if resp.status_code == 404 and allow_404:
            return None
        if resp.status_code >= 400:
            raise ConsulError(
                f"{method} {path} returned {resp.status_code}: {clip(resp.text.strip(), 400)}",
                status=resp.status_code,
            )
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    # -- reads ---------------------------------------------------------------------

    def local_datacenter(self) -> Optional[str]:
        """The agent's datacenter (``/v1/agent/self``)."""
        out = self.request("GET", "/v1/agent/self")
        dc = ((out or {}).get("Config") or {}).get("Datacenter")
        return str(dc) if dc else None

    def datacenters(self) -> list[str]:
        out = self.request("GET", "/v1/catalog/datacenters")
        return [str(d) for d in out or []]

    @staticmethod
    def _scope(
        datacenter: Optional[str], partition: Optional[str], enterprise: bool
    ) -> dict[str, str]:
        q: dict[str, str] = {}
        if datacenter:
            q["dc"] = datacenter
        if enterprise:
            q["ns"] = "*"
            if partition:
                q["partition"] = partition
        return q

    def node_services(
        self,
        node: str,
        datacenter: Optional[str] = None,
        partition: Optional[str] = None,
        enterprise: bool = False,
    ) -> Optional[dict[str, Any]]:
        """``/v1/catalog/node-services/:node`` (None when the node does not exist)."""
        out = self.request(
            "GET",
            f"/v1/catalog/node-services/{quote(node, safe='')}",
            self._scope(datacenter, partition, enterprise),
            allow_404=True,
        )
        return out if isinstance(out, dict) else None

    def service_defaults(
        self,
        datacenter: Optional[str] = None,
        partition: Optional[str] = None,
        enterprise: bool = False,
    ) -> list[dict[str, Any]]:
        out = self.request(
            "GET",
            "/v1/config/service-defaults",
            self._scope(datacenter, partition, enterprise),
            allow_404=True,
        )
        return list(out or [])

    def roots(self) -> dict[str, Any]:
        out = self.request("GET", "/v1/agent/connect/ca/roots")
        return dict(out or {})

    def leaf(self, service: str) -> dict[str, Any]:
        """The agent-cached leaf certificate of ``service`` (holds a private key).

        Like upstream's newest version: no dc/ns/partition options (the agent's
        own partition), since a partition here is rejected by the agent.
        """
        out = self.request("GET", f"/v1/agent/connect/ca/leaf/{quote(service, safe='')}")
        return dict(out or {})

    # -- writes --------------------------------------------------------------------

    def send(self, request: Mapping[str, Any]) -> Any:
        """Sends a Consul request of the plan (``{method, path, query?, body?}``)."""
        out = self.request(
            str(request["method"]),
            str(request["path"]),
            request.get("query") or {},
            request.get("body"),
        )
        if out is False:
            raise ConsulError(f"{request['method']} {request['path']} returned false (not applied)")
        return out
