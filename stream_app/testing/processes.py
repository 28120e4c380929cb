"""`sentiment-monitor worker` and `sentiment-monitor api` subprocesses that tests, the chaos suite
and benches can start, kill -9, stop and restart: one launcher, so they all drive them the same way."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    command = "worker"
    port_variable = "SM_WEB_PORT"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env[self.port_variable]}"

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, by a fixed command name
                [sys.executable, "-m", "stream_app.cli", self.command],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:  # noqa: S310 - loopback http
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until /readyz answers 200; fails at once, with the log, if the worker exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.command} exited:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.3)
        raise TimeoutError(f"{self.command} not ready:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None  # noqa: S101 (programming error: never started)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM; returns how long the exit took (SIGKILL after `timeout`)."""
        if self.process is None or not self.alive():
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class ApiProcess(WorkerProcess):
    """`sentiment-monitor api`: the queries and the live page, on SM_API_PORT."""

    command = "api"
    port_variable = "SM_API_PORT"
