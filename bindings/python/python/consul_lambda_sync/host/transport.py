"""Carries the engine's requests (docs/engine.md): Consul and the engine's signed AWS calls
(``http``) over keep-alive HTTP/1.1 connections (``http1``, one per thread and endpoint); AWS calls
for an SDK (``aws``, when the engine has no credentials) over boto3, imported only then, with
its retries off (the engine retries). The ACL token and the CA stay here (from the environment,
or the engine's ``secret`` requests).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlencode, urlsplit

from consul_lambda_sync import LARGE_BODY_BYTES

from .http1 import Connection, TooLarge

if TYPE_CHECKING:
    from collections.abc import Mapping

    from consul_lambda_sync import Answer, BytesAnswer
    from consul_lambda_sync._types import AwsCall, ConsulCall, HttpCall, WireRequest

    from .log import JsonLogger

# The engine's AWS service names, as boto3 spells them.
SERVICES = {"tagging": "resourcegroupstaggingapi", "lambda": "lambda", "ssm": "ssm", "sts": "sts"}


def failure(rid: int, code: str, message: str, status: Optional[int] = None) -> Answer:
    return {"id": rid, "error": {"code": code, "message": message, "status": status}}


class Consul:
    """Consul's HTTP API; ``config`` is the core's (``config_from_env``)."""

    def __init__(self, config: Mapping[str, Any], token: Optional[str] = None) -> None:
        address = str(config.get("consulHttpAddr") or "http://127.0.0.1:8500")
        if config.get("consulHttpSsl") and address.startswith("http://"):
            address = "https://" + address[len("http://") :]
        url = urlsplit(address)
        self.base, self.https = address, url.scheme == "https"
        self.host, self.prefix = url.hostname or "127.0.0.1", url.path.rstrip("/")
        self.port = url.port or (443 if self.https else 80)
        self.netloc = url.netloc
        self.config, self.token = config, token
        self.ca_pem: Optional[str] = None
        self._ctx: Optional[ssl.SSLContext] = None
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._lock = threading.Lock()

    def set_ca(self, pem: str) -> None:
        with self._lock:
            self.ca_pem, self._ctx = pem, None
            self.close_all()

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ctx is None:
                cfg = self.config
                cafile = None if self.ca_pem else cfg.get("consulCacert")
                ctx = ssl.create_default_context(cafile=cafile, cadata=self.ca_pem or None)
                if cfg.get("consulHttpSslVerify") is False:
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                if cfg.get("consulClientCert") and cfg.get("consulClientKey"):
                    ctx.load_cert_chain(cfg["consulClientCert"], cfg["consulClientKey"])
                self._ctx = ctx
            return self._ctx

    def _conn(self) -> Connection:
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is None or conn not in self._conns:
            tls, name = None, None
            if self.https:
                tls, name = self._context(), self.config.get("consulTlsServerName")
            conn = Connection(self.host, self.port, tls, name)
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def call(self, rid: int, req: ConsulCall, timeout: float) -> Union[Answer, BytesAnswer]:
        path = self.prefix + req["path"]  # already percent-encoded: sent as is
        if req.get("query"):
            path += "?" + urlencode(req["query"])
        headers = {"Host": self.netloc, "User-Agent": "consul-lambda-sync"}
        body = None
        if "body" in req:  # JSON text, sent as is
            body = req["body"].encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["X-Consul-Token"] = self.token
        # Never more than the engine's cap for this request (an answer over it is an
        # error naming the request, not a process out of memory).
        limit = int(req.get("maxBytes") or 0)
        try:
            status, heads, data = self._conn().request(
                req["method"], path, headers, body, timeout=timeout, limit=limit
            )
        except TooLarge:
            return _too_large(rid, req, limit)
        except OSError as e:  # the connection is closed: the next request opens a new one
            return failure(rid, "transport", f"Consul at {self.base}: {_reason(e)}")
        if len(data) > LARGE_BODY_BYTES:  # fed as the bytes read (Engine.feed)
            return {"id": rid, "status": status, "headers": heads, "body": data}
        text = data.decode("utf-8", "replace")
        return {"id": rid, "status": status, "headers": heads, "body": text}

    def close_all(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns = []


def _too_large(rid: int, req: ConsulCall, limit: int) -> Answer:
    what = f"{req['method']} {req['path']}"
    return failure(rid, "answer_too_large", f"{what}: the answer is over {limit} bytes; not read")


def _reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return f"TLS failed ({getattr(e, 'reason', None) or e})"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    m = re.search(r"\[Errno -?\d+\][^'\")]*", str(e))
    return m.group(0).strip() if m else (str(e) or type(e).__name__)


def _snake(operation: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation).lower()


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class Aws:
    """boto3 clients by service, with boto3's own retries off; boto3 is imported at the first
    call (a host whose engine signs its AWS calls never imports it)."""

    def __init__(self, region: Optional[str] = None, session: Any = None) -> None:
        self.region = region or None
        self._session: Any = session
        self.timeout = 10.0
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3  # noqa: PLC0415

            self._session = boto3.session.Session(region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        from botocore.config import Config as BotoConfig  # noqa: PLC0415

        with self._lock:
            if service not in self._clients:
                # One attempt (total_max_attempts; max_attempts counts retries): the engine retries.
                cfg = BotoConfig(
                    retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=min(self.timeout, 5.0),
                    read_timeout=self.timeout,
                    user_agent_extra="consul-lambda-sync",
                )
                self._clients[service] = self.session.client(service, config=cfg)
            return self._clients[service]

    def call(self, rid: int, req: AwsCall) -> Answer:
        try:
            return self._call(rid, req)
        except ImportError as e:
            message = f"{e.name} is not installed: pip install 'consul-lambda-sync[host]'"
            return failure(rid, "config", f"{message}, or give AWS credentials in the environment")

    def _call(self, rid: int, req: AwsCall) -> Answer:
        from botocore.exceptions import (  # noqa: PLC0415
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError  # noqa: PLC0415

        try:
            method = getattr(self.client(SERVICES[req["service"]]), _snake(req["operation"]))
            out = dict(method(**(req.get("input") or {})))
        except ClientError as e:
            err, meta = e.response.get("Error", {}), e.response.get("ResponseMetadata", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", ""))
            return failure(rid, code, message, meta.get("HTTPStatusCode"))
        except (NoCredentialsError, PartialCredentialsError, NoRegionError) as e:
            return failure(rid, "config", str(e))
        except (BotoConnectionError, HTTPClientError) as e:
            return failure(rid, "transport", str(e))
        except (BotoCoreError, KeyError, AttributeError, TypeError, ValueError) as e:
            return failure(rid, type(e).__name__, str(e))
        out.pop("ResponseMetadata", None)
        return {"id": rid, "ok": _json_safe(out)}


class AwsHttp:
    """The engine's signed AWS calls (``http``), sent exactly as given over keep-alive
    connections, one per thread and endpoint."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Connection] = []
        self._tls: Optional[ssl.SSLContext] = None

    def _conn(self, scheme: str, host: str, port: int) -> Connection:
        conns: dict[tuple[str, str, int], Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get((scheme, host, port))
        if conn is None:
            tls = None
            if scheme == "https":
                with self._lock:
                    tls = self._tls = self._tls or ssl.create_default_context()
            conn = conns[(scheme, host, port)] = Connection(host, port, tls)
            with self._lock:
                self._conns.append(conn)
        return conn

    def call(self, rid: int, req: HttpCall, timeout: float) -> Answer:
        url = urlsplit(req["url"])
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        body = req["body"].encode() if req["body"] else None
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
            conn = self._conn(url.scheme, url.hostname or "", port)
            status, heads, data = conn.request(
                req["method"], target, req["headers"], body, timeout=timeout
            )
        except (OSError, ValueError) as e:  # the connection is closed: the next call opens one
            return failure(rid, "transport", f"AWS at {url.netloc}: {_reason(e)}")
        return {
            "id": rid,
            "status": status,
            "headers": heads,
            "body": data.decode("utf-8", "replace"),
        }

    def close_all(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns = []


class Carrier:
    """Carries one request of a step; keeps the Consul credentials the engine asks for."""

    def __init__(self, consul: Consul, aws: Aws, log: JsonLogger) -> None:
        self.consul, self.aws, self.log = consul, aws, log
        self.aws_http = AwsHttp()
        log.add_secret(consul.token)

    def carry(self, req: WireRequest, timeout: float) -> Union[Answer, BytesAnswer]:
        rid = req["id"]
        if "consul" in req:
            return self.consul.call(rid, req["consul"], timeout)
        if "http" in req:
            answer = self.aws_http.call(rid, req["http"], timeout)
            if req.get("secret") and answer.get("status") == 200:
                try:
                    output = json.loads(answer["body"] or "{}")
                except ValueError:  # not JSON: the engine reports the answer as invalid
                    return answer
                answer["body"] = self._keep_secret(req, output)
            return answer
        self.aws.timeout = timeout
        answer = self.aws.call(rid, req["aws"])
        if req.get("secret") and isinstance(answer.get("ok"), dict):
            self._keep_secret(req, answer["ok"])
        return answer

    def _keep_secret(self, req: WireRequest, output: Any) -> str:
        """Keeps a credential read from Parameter Store; the output, its value blanked."""
        parameter = output.get("Parameter") if isinstance(output, dict) else None
        if isinstance(parameter, dict):
            value, parameter["Value"] = parameter.get("Value") or "", ""
            if req.get("secret") == "consulToken":
                self.consul.token = str(value).strip()
                self.log.add_secret(self.consul.token)
            else:
                self.consul.set_ca(str(value))
        return json.dumps(output)

    def close_all(self) -> None:
        self.consul.close_all()
        self.aws_http.close_all()
