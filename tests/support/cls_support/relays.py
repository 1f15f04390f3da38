"""Small TCP stand-ins for the extension's end-to-end test and benchmark, on the loopback only.

- :class:`SniGateway`: a mesh gateway stand-in. It reads the TLS ClientHello,
  routes on its SNI name to a Connect proxy's address, and splices the bytes
  without decrypting (as a real mesh gateway does for TCP). An unknown name is
  refused. It notes each ClientHello's name and key share groups.
- :class:`Switch`: a TCP relay that can be cut off (a Parameter Store outage).
- :class:`EchoServer`: the destination service.
- :func:`connect_sidecar`: the destination's sidecar, `consul connect proxy`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import TYPE_CHECKING, Optional

from .procs import spawn, wait_for

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from .consul import ConsulAgent


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def connect_sidecar(
    consul: ConsulAgent, name: str, service_port: int, sidecar_port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Registers ``name`` (on ``service_port``) with a Connect sidecar on ``sidecar_port``
    and starts `consul connect proxy` as that sidecar: it checks each client certificate
    against Consul's CA and asks the agent for the intention. Returns once it listens."""
    consul.put(
        "/v1/agent/service/register",
        {
            "Name": name,
            "Address": "127.0.0.1",
            "Port": service_port,
            "Connect": {
                "SidecarService": {
                    "Address": "127.0.0.1",
                    "Port": sidecar_port,
                    "Proxy": {
                        "LocalServiceAddress": "127.0.0.1",
                        "LocalServicePort": service_port,
                    },
                }
            },
        },
    )
    argv = [consul.binary, "connect", "proxy", "-sidecar-for", name, "-http-addr", consul.addr]
    proc = spawn(argv, log)
    wait_for("connect proxy", lambda: listening(sidecar_port), 60, proc, log)
    return proc


def _splice(a: socket.socket, b: socket.socket) -> None:
    def one(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                with contextlib.suppress(OSError):
                    s.shutdown(how)

    t = threading.Thread(target=one, args=(b, a), daemon=True)
    t.start()
    one(a, b)
    t.join(timeout=30)
    a.close()
    b.close()


class Server:
    """A loopback TCP server: a thread per connection, ``handle`` in subclasses."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            # Relays and services reply at once (no Nagle delay before an echo).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class EchoServer(Server):
    def handle(self, conn: socket.socket) -> None:
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)


def _client_hello_extensions(record: bytes) -> dict[int, bytes]:
    """The extensions of a TLS ClientHello record, by type (empty if it is not one)."""
    out: dict[int, bytes] = {}
    try:
        if record[0] != 0x16:
            return out
        body = record[5:]
        if body[0] != 0x01:
            return out
        p = 4 + 2 + 32  # handshake header, version, random
        p += 1 + body[p]  # session id
        p += 2 + struct.unpack(">H", body[p : p + 2])[0]  # cipher suites
        p += 1 + body[p]  # compression methods
        end = p + 2 + struct.unpack(">H", body[p : p + 2])[0]
        p += 2
        while p + 4 <= end:
            kind, size = struct.unpack(">HH", body[p : p + 4])
            out[kind] = body[p + 4 : p + 4 + size]
            p += 4 + size
    except (IndexError, struct.error):
        return out
    return out


def client_hello_sni(record: bytes) -> Optional[str]:
    """The server_name of a TLS ClientHello record, or None."""
    ext = _client_hello_extensions(record).get(0)  # list length, type, name length, name
    if ext is None or len(ext) < 5:
        return None
    n = struct.unpack(">H", ext[3:5])[0]
    try:
        return ext[5 : 5 + n].decode("ascii")
    except UnicodeDecodeError:
        return None


def client_hello_key_shares(record: bytes) -> list[int]:
    """The named groups of the key shares a TLS 1.3 ClientHello carries (0x001d is X25519)."""
    ext = _client_hello_extensions(record).get(51, b"")  # key_share
    groups = []
    p = 2  # the list's length
    while p + 4 <= len(ext):
        group, size = struct.unpack(">HH", ext[p : p + 4])
        groups.append(group)
        p += 4 + size
    return groups


class SniGateway(Server):
    """Routes by SNI name: ``routes[name] = (host, port)``."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, int]] = {}
        self.seen: list[str] = []
        self.key_shares: list[list[int]] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        head = b""
        try:
            while len(head) < 5 or len(head) < 5 + struct.unpack(">H", head[3:5])[0]:
                chunk = conn.recv(16384)
                if not chunk:
                    conn.close()
                    return
                head += chunk
        except OSError:
            conn.close()
            return
        name = client_hello_sni(head) or ""
        self.seen.append(name)
        self.key_shares.append(client_hello_key_shares(head))
        target = self.routes.get(name)
        if target is None:
            conn.close()
            return
        up = socket.create_connection(target, timeout=10)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.settimeout(None)
        conn.settimeout(None)
        up.sendall(head)
        _splice(conn, up)


class Switch(Server):
    """A relay to ``target`` that refuses connections while ``on`` is False."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.on = True
        self.refused = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        if not self.on:
            self.refused += 1
            conn.close()
            return
        up = socket.create_connection(self.target, timeout=10)
        _splice(conn, up)
