"""JSON log lines: the engine's records plus a timestamp; known secrets redacted by value."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}


class JsonLogger:
    """Writes one JSON object a line (the engine already filtered by ``LOG_LEVEL``)."""

    def __init__(self, level: str = "trace", stream: Optional[IO[str]] = None) -> None:
        self.threshold = LEVELS.get(str(level).lower(), 0)
        self.stream = stream
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self._deferred = False

    def add_secret(self, secret: Optional[str]) -> None:
        """Never print ``secret`` (values shorter than 4 characters are ignored)."""
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if LEVELS.get(level, 0) < self.threshold:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record: dict[str, Any] = {"time": now, "level": level, "msg": msg}
        for k, v in fields.items():
            if v is not None and k not in record:
                record[k] = v
        line = json.dumps(record, default=str)
        for s in self._secrets:
            line = line.replace(s, "<redacted>")
        with self._lock:
            stream = self.stream if self.stream is not None else sys.stdout
            stream.write(line + "\n")
            if not self._deferred:
                stream.flush()

    def log_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Prints an engine step's log records (``level``, ``msg``, ``fields``), flushing once."""
        self._deferred = True
        try:
            for rec in records:
                self.log(rec["level"], rec["msg"], **rec.get("fields", {}))
        finally:
            self._deferred = False
            with self._lock:
                (self.stream if self.stream is not None else sys.stdout).flush()
