#!/usr/bin/env python3
"""A custom Lambda runtime (the function's code, simulated): each invocation's
event is {"port": N, "message": "..."}; it connects to 127.0.0.1:N — the
extension's listener for an upstream — sends the message and returns what came
back, or the error."""

import json
import os
import socket
import urllib.request
from typing import Any

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def call(event: dict[str, Any]) -> dict[str, Any]:
    message = event["message"].encode()
    try:
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=10) as s:
            s.sendall(message)
            reply = b""
            while len(reply) < len(message):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return {"reply": reply.decode(errors="replace")}
    except OSError as e:
        return {"reply": "", "error": str(e)}


while True:
    with urllib.request.urlopen(f"{API}/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps(call(event)).encode()
    req = urllib.request.Request(
        f"{API}/invocation/{request_id}/response", data=body, method="POST"
    )
    urllib.request.urlopen(req).read()
