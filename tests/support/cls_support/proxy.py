"""The recording, fault-injecting HTTP proxy (tests/support/proxy, Go, standard
library only), built once per source version into the cache."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Optional

import requests

from .procs import cache_dir, stop_process, tail

SOURCE = Path(__file__).resolve().parent.parent / "proxy"


def proxy_binary() -> str:
    """Builds the proxy once per version of its source; returns its path."""
    digest = hashlib.sha256(
        (SOURCE / "main.go").read_bytes() + (SOURCE / "go.mod").read_bytes()
    ).hexdigest()[:16]
    out = cache_dir() / "bench-proxy" / digest / "proxy"
    if out.exists():
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"proxy.tmp.{os.getpid()}")
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(tmp), "."],
        cwd=SOURCE,
        env=env,
        check=True,
        timeout=600,
    )
    tmp.replace(out)
    return str(out)


class Proxy:
    """One proxy process in front of ``target``; ``kind`` is ``consul`` or ``aws``
    (how it names operations in its counts)."""

    def __init__(self, kind: str, target: str, workdir: Path) -> None:
        self.kind = kind
        self.target = target
        self.log = workdir / f"proxy-{kind}-{uuid.uuid4().hex[:6]}.log"
        self.proc: Optional[subprocess.Popen[str]] = None
        self.url = ""
        self.session = requests.Session()

    def start(self) -> Proxy:
        err = open(self.log, "w")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [proxy_binary(), "-kind", self.kind, "-target", self.target],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"proxy did not start:\n{tail(self.log)}")
        self.url = f"http://{line}"
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def stats(self) -> dict[str, Any]:
        return dict(self.session.get(self.url + "/_proxy/stats", timeout=30).json())

    def reset(self) -> None:
        self.session.post(self.url + "/_proxy/reset", timeout=30).raise_for_status()

    def faults(self, rules: list[dict[str, Any]]) -> None:
        self.session.put(self.url + "/_proxy/faults", json=rules, timeout=30).raise_for_status()

    def clear_faults(self) -> None:
        self.session.delete(self.url + "/_proxy/faults", timeout=30).raise_for_status()

    def transcript(self) -> list[dict[str, Any]]:
        """Every request since the last :meth:`clear_transcript`, in arrival order:
        ``{method, path, query, body, op[, fault]}`` (no header; PutParameter values
        redacted). Fails when the proxy dropped entries past its limit."""
        resp = self.session.get(self.url + "/_proxy/log", timeout=30)
        resp.raise_for_status()
        dropped = int(resp.headers.get("X-Proxy-Log-Dropped") or 0)
        if dropped:
            raise RuntimeError(f"the {self.kind} proxy's transcript dropped {dropped} requests")
        return list(resp.json())

    def clear_transcript(self) -> None:
        self.session.delete(self.url + "/_proxy/log", timeout=30).raise_for_status()

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "target": self.target}
