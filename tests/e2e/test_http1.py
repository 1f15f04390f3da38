"""The Python host's HTTP/1.1 connection (``host/http1.py``) against a raw socket server:
chunked, read-to-close, interim and closing answers, keep-alive reuse and the size cap."""

from __future__ import annotations

import socket
import threading

import pytest
from consul_lambda_sync.host.http1 import Connection, HttpError, TooLarge

ANSWERS = [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    b"X-A: 1\r\nX-A: 2\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone",
    b"HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
    b"garbage\r\n\r\n",
]


def test_answers_of_every_framing() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []
    seen: list[bytes] = []

    def serve() -> None:
        while ANSWERS:
            conn, _ = server.accept()
            connections.append(1)
            with conn:
                while ANSWERS:
                    data = conn.recv(65536)
                    if not data:
                        break
                    seen.append(data)
                    answer = ANSWERS.pop(0)
                    conn.sendall(answer)
                    if b"Connection: close" in answer or b"9999" in answer:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    c = Connection("127.0.0.1", server.getsockname()[1])
    status, headers, body = c.request("PUT", "/x?a=%2F", {"Host": "h"}, b'{"a":1}', timeout=2)
    assert (status, bytes(body), headers["x-a"]) == (200, b"hello world", "1, 2")
    assert seen[0].startswith(b"PUT /x?a=%2F HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n")
    status, _, body = c.request("GET", "/y", {"Host": "h"}, None, timeout=2)
    assert (status, bytes(body)) == (404, b"gone")
    assert len(connections) == 1, "the connection is kept alive"
    with pytest.raises(TooLarge):
        c.request("GET", "/big", {"Host": "h"}, None, timeout=2, limit=100)
    assert c.sock is None, "a capped answer drops the connection"
    status, _, body = c.request("GET", "/close", {"Host": "h"}, None, timeout=2)
    assert bytes(body) == b"to the end"
    with pytest.raises(HttpError):
        c.request("GET", "/bad", {"Host": "h"}, None, timeout=2)
    assert len(connections) == 3
    c.close()
    server.close()
