"""Process plumbing shared by every server: ports, readiness, stopping, the cache."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

#: The repository root (this file is tests/support/cls_support/procs.py).
REPO = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """``$CONSUL_LAMBDA_SYNC_CACHE``, else ``~/.cache/consul-lambda-sync`` (as
    scripts/install-consul.sh): built binaries that outlive a checkout."""
    root = os.environ.get("CONSUL_LAMBDA_SYNC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "consul-lambda-sync"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(log: Optional[Path], n: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-n:]


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float = 60.0,
    proc: Any = None,
    log: Optional[Path] = None,
) -> None:
    """Polls ``check`` until it is true; fails at once when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if check():
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s (last error: {last}):\n{tail(log)}")


def stop_process(proc: Optional[subprocess.Popen[Any]], sig: int = signal.SIGTERM) -> None:
    """Stops one process this package started (by its own handle, never by name)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def run_script(name: str, *args: str, timeout: float = 3600) -> str:
    """Runs ``scripts/NAME`` of this repository (its progress on stderr) and returns
    the last line it printed: the path of what it built."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / name), *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    return out.stdout.strip().splitlines()[-1]


def spawn(argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    """Starts a server with stdout and stderr going to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM of /proc/PID/status), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def make_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"cls-{name}-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
