"""Structured JSON logs: one object per line, never a token or a private key.

Secrets that the host handles (the ACL token) are registered with
:meth:`JsonLogger.add_secret`; any occurrence in a log line is replaced before
the line is written, as a second line of defence behind not logging them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any, Optional

LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}
# Field names whose values are never logged, whatever the caller passes.
_SECRET_FIELDS = frozenset(
    {"token", "privatekeypem", "private_key_pem", "value", "secret", "password"}
)


class JsonLogger:
    """Writes JSON log lines at or above a level."""

    def __init__(self, level: str = "info", stream: Optional[IO[str]] = None) -> None:
        self.threshold = LEVELS.get(str(level).lower(), LEVELS["info"])
        self.stream = stream
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def set_level(self, level: str) -> None:
        self.threshold = LEVELS.get(str(level).lower(), self.threshold)

    def add_secret(self, secret: Optional[str]) -> None:
        """Never print ``secret`` (values shorter than 4 characters are ignored)."""
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)

    def enabled(self, level: str) -> bool:
        return LEVELS.get(level, 0) >= self.threshold

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if not self.enabled(level):
            return
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "level": level,
            "msg": msg,
        }
        for k, v in fields.items():
            if v is None:
                continue
            record[k] = "<redacted>" if k.lower() in _SECRET_FIELDS else v
        line = json.dumps(record, default=str, sort_keys=False)
        for s in self._secrets:
            line = line.replace(s, "<redacted>")
        stream = self.stream if self.stream is not None else sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def trace(self, msg: str, **fields: Any) -> None:
        self.log("trace", msg, **fields)

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warn(self, msg: str, **fields: Any) -> None:
        self.log("warn", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)


def clip(text: object, limit: int = 500) -> str:
    """Shortens a message (error bodies can be long)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"
