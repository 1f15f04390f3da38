"""A deployed function run the way Lambda's managed runtimes run it: AWS's Lambda Runtime
Interface Emulator (aws-lambda-rie, scripts/install-rie.sh) starts the runtime's bootstrap,
AWS's runtime interface client for that runtime (``aws-lambda-ric`` on Node.js,
``awslambdaric`` on Python) polls the emulator's Runtime API and calls the handler, and each
event is posted to the emulator's invoke endpoint.

The runtimes (tests/deploy/runtimes.json, made by scripts/test-deploy.sh): each Lambda runtime
name (``nodejs22.x``, ``python3.12``) maps to the interpreter of that release and the
runtime's own libraries (the AWS SDK, which Lambda's runtimes provide; the RIC).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import requests
from cls_support import free_port, stop_process, tail, wait_for


@dataclass
class Runtime:
    """One Lambda runtime on this machine: the bootstrap's argv before the handler, and the
    environment Lambda's runtime sets for it (its library path)."""

    name: str
    argv: list[str]
    env: dict[str, str]

    @staticmethod
    def load(name: str) -> Runtime:
        table = json.loads(Path(os.environ["DEPLOY_RUNTIMES"]).read_text())
        if name not in table:
            raise AssertionError(f"no local runtime for {name} (have {sorted(table)})")
        r = table[name]
        return Runtime(name, list(r["argv"]), dict(r["env"]))


@dataclass
class Invocation:
    status: int
    body: Any
    error_type: Optional[str]
    output: list[str]  # what the function printed during this invocation (the runtime's lines)

    def metrics(self) -> list[dict[str, Any]]:
        """The EMF documents printed (lines holding ``_aws``)."""
        lines = (raw.strip() for raw in self.output)
        return [json.loads(x) for x in lines if x.startswith("{") and '"_aws"' in x]


class DeployedFunction:
    """A function's code, handler, runtime and environment, served by aws-lambda-rie on
    free loopback ports."""

    def __init__(
        self,
        *,
        rie: str,
        runtime: Runtime,
        code_zip: bytes,
        handler: str,
        env: dict[str, str],
        workdir: Path,
        timeout_s: int,
    ) -> None:
        self.rie = rie
        self.runtime = runtime
        self.handler = handler
        self.task = workdir / "task"  # Lambda's /var/task
        self.task.mkdir(parents=True)
        zip_path = workdir / "code.zip"
        zip_path.write_bytes(code_zip)
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(self.task)
        self.port = free_port()
        self.api_port = free_port()
        self.log = workdir / "rie.log"
        self.env = {
            # Only what a Lambda execution environment has: the function's environment,
            # Lambda's reserved variables, and the runtime's.
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(workdir),
            "LAMBDA_TASK_ROOT": str(self.task),
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            **runtime.env,
            **env,
        }
        self.env = {k: v.replace("{task}", str(self.task)) for k, v in self.env.items()}
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> DeployedFunction:
        argv = [
            self.rie,
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{self.api_port}",
            *self.runtime.argv,
            self.handler,
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.task,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the runtime goes with it
            )

        def listening() -> bool:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return True
            except requests.ConnectionError:
                return False

        wait_for("aws-lambda-rie", listening, 60, self.proc, self.log)
        return self

    def invoke(self, event: Any, timeout: float = 120) -> Invocation:
        before = self.log.stat().st_size
        r = requests.post(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=json.dumps(event),
            timeout=timeout,
        )
        # The runtime's lines for this invocation end with the emulator's REPORT line.
        deadline = time.monotonic() + 10
        while b"REPORT RequestId" not in self._since(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        text = self._since(before).decode(errors="replace")
        try:
            body = r.json()
        except ValueError:
            body = r.text
        error_type = r.headers.get("X-Amz-Function-Error") or (
            body.get("errorType") if isinstance(body, dict) and "errorMessage" in body else None
        )
        return Invocation(r.status_code, body, error_type, text.splitlines())

    def _since(self, offset: int) -> bytes:
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read()

    def log_tail(self) -> str:
        return tail(self.log, 3000)

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                # the runtime the emulator started, if it outlived the emulator
                os.killpg(self.proc.pid, signal.SIGKILL)
