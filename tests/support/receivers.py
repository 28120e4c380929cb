"""Real local HTTP servers for sink tests: a recording receiver and Debian's Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stream_app.testing.kafka_local import free_port


class Receiver:
    """Records every JSON body POSTed to it, by path. `status_for(path, n)` picks the reply."""

    def __init__(self, status_for: Callable[[str, int], int] = lambda path, n: 200, delay_s: float = 0.0) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    seen = receiver.bodies.setdefault(self.path, [])
                    seen.append(body)
                    status = status_for(self.path, len(seen))
                time.sleep(delay_s)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, path: str) -> list[Any]:
        with self.lock:
            return list(self.bodies.get(path, []))


def start_until_ready(command: list[str], log: Path, ready_url: str, timeout: float) -> subprocess.Popen[bytes]:
    """Start a server and poll its readiness URL; on timeout, fail with its log."""
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise TimeoutError(log.read_text())


class LocalServer:
    """A server binary run from a test on a free loopback port; subclasses start it in `__enter__`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class LocalAlertmanager(LocalServer):
    """Alertmanager with one webhook receiver, grouping by alert so each notification is one alert."""

    def __init__(self, workdir: Path, webhook_url: str) -> None:
        super().__init__(workdir)
        binary = alertmanager_binary()
        assert binary, "prometheus-alertmanager is not installed (scripts/setup installs it)"
        self.binary = binary
        self.webhook_url = webhook_url

    def __enter__(self) -> LocalAlertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: test\n"
            "  group_by: [alertname, entity]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: test\n"
            "    webhook_configs:\n"
            f"      - url: {self.webhook_url}\n"
            "        send_resolved: true\n"
        )
        command = [
            self.binary,
            f"--config.file={config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.process = start_until_ready(command, self.workdir / "alertmanager.log", f"{self.url}/-/ready", 30)
        return self

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return list(json.loads(response.read()))
