"""The test stack's pieces that tests import directly: the repo root, a worker subprocess, and
Settings built from a worker's environment (fixtures in tests/conftest.py hand them out)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from stream_app.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A `sentiment-monitor worker` subprocess that tests can kill -9 and restart."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream_app.cli", "worker"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        import urllib.request

        url = f"http://127.0.0.1:{self.env['SM_WEB_PORT']}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def settings_from(env: dict[str, str]) -> Settings:
    overrides = {k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"}
    return load_settings(**overrides)
