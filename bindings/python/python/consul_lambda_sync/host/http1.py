"""A minimal HTTP/1.1 client connection for the transports: one keep-alive socket (plain or
TLS), blocking with a timeout, a request at a time. It does only what the engine's requests
need — a known method, target and headers, a body with ``Content-Length``, answers with
``Content-Length``, ``chunked`` or read to the close — at about a quarter of ``http.client``'s
CPU per request (its header parsing goes through the email package), which is most of a sync's
CPU once the engine signs AWS calls itself (BENCHMARKS.md, Table 7).
"""

from __future__ import annotations

import select
import socket
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import ssl

_CHUNK = 1 << 16


class HttpError(OSError):
    """The server's answer is not HTTP/1.x as expected (a transport error)."""


class TooLarge(Exception):
    """The answer is longer than the caller reads."""


class Connection:
    """One keep-alive connection to ``host:port``; ``tls``: the context to wrap it with,
    checking the certificate against ``server_name``."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: Optional[ssl.SSLContext] = None,
        server_name: Optional[str] = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.server_name = server_name or host
        self.sock: Optional[socket.socket] = None
        self._buf = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
        self._buf = bytearray()

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
        except BaseException:
            sock.close()
            raise
        return sock

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Optional[bytes],
        *,
        timeout: float,
        limit: int = 0,
    ) -> tuple[int, dict[str, str], bytearray]:
        """Sends one request; the status, the headers (names lower-case) and the body.
        Raises ``OSError`` (no answer; the connection is closed), ``TooLarge`` (an answer
        over ``limit`` bytes, when ``limit``; the connection is closed)."""
        sock = self.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self.close()  # the server closed the idle connection: reconnect, not fail
            sock = None
        if sock is None:
            sock = self.sock = self._connect(timeout)
        else:
            sock.settimeout(timeout)
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            sock.sendall(head + body if body else head)
            return self._answer(sock, method, limit)
        except ValueError as e:  # a chunk size that is not a number
            self.close()
            raise HttpError(f"not an HTTP answer: {e}") from e
        except BaseException:
            self.close()
            raise

    def _fill(self, sock: socket.socket) -> None:
        data = sock.recv(_CHUNK)
        if not data:
            raise HttpError("the server closed the connection")
        self._buf += data

    def _line(self, sock: socket.socket) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._fill(sock)
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _answer(
        self, sock: socket.socket, method: str, limit: int
    ) -> tuple[int, dict[str, str], bytearray]:
        while True:
            status_line = self._line(sock)
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise HttpError(f"not an HTTP answer: {status_line[:60]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            while line := self._line(sock):
                name, _, value = line.partition(b":")
                key = name.strip().lower().decode("latin-1")
                text = value.strip().decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            if status >= 200 or status == 101:
                break  # 1xx: an interim answer, the real one follows
        close = headers.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            body = bytearray()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked(sock, limit)
        elif (length := headers.get("content-length", "")).isdigit():
            if limit and int(length) > limit:
                raise TooLarge(length)
            body = self._exactly(sock, int(length))
        else:
            body, close = self._to_close(sock, limit), True
        if close or self._buf:
            self.close()
        return status, headers, body

    def _exactly(self, sock: socket.socket, n: int) -> bytearray:
        """The next ``n`` bytes; a large body is read straight into its own buffer."""
        if len(self._buf) >= n:
            body = self._buf[:n]
            del self._buf[:n]
            return body
        body, have = bytearray(n), len(self._buf)
        body[:have] = self._buf
        self._buf = bytearray()
        view = memoryview(body)
        while have < n:
            got = sock.recv_into(view[have:], min(n - have, 1 << 20))
            if not got:
                raise HttpError("the server closed the connection")
            have += got
        return body

    def _chunked(self, sock: socket.socket, limit: int) -> bytearray:
        body = bytearray()
        while True:
            size = int(self._line(sock).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._line(sock):  # trailers
                    pass
                return body
            if limit and len(body) + size > limit:
                raise TooLarge(str(len(body) + size))
            body += self._exactly(sock, size)
            self._line(sock)

    def _to_close(self, sock: socket.socket, limit: int) -> bytearray:
        body, self._buf = self._buf, bytearray()
        while data := sock.recv(_CHUNK):
            body += data
            if limit and len(body) > limit:
                raise TooLarge(str(len(body)))
        return body
