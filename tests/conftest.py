"""Shared fixtures: real Kafka, real Redis and a real worker process, started per session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.infra.kafka_local import LocalKafka, free_port
from stream_app.infra.redis_local import LocalRedis
from stream_app.settings import DEFAULT_MODEL_DIR, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    with LocalKafka() as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The shipped default model: what the service and the demo use."""
    assert (DEFAULT_MODEL_DIR / "labels.json").exists(), "models/default is missing"
    return DEFAULT_MODEL_DIR


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


@pytest.fixture
def stack_env(
    kafka: LocalKafka, redis_server: LocalRedis, tmp_path: Path, request: pytest.FixtureRequest
) -> dict[str, str]:
    """Environment for one test's worker: its own topics, consumer group and Redis db."""
    suffix = f"{request.node.name[:40]}-{os.getpid()}-{time.monotonic_ns() % 100000}".replace("[", "-").replace("]", "")
    env = {
        **os.environ,
        "SM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SM_REDIS_URL": redis_server.url,
        "SM_APP_ID": f"sm-test-{suffix}",
        "SM_TOPIC_POSTS": f"posts-{suffix}",
        "SM_TOPIC_REVIEWS": f"reviews-{suffix}",
        "SM_TOPIC_SCORED": f"scored-{suffix}",
        "SM_TOPIC_DEAD_LETTER": f"dead-{suffix}",
        "SM_TOPIC_ALERTS": f"alerts-{suffix}",
        "SM_TOPIC_PARTITIONS": "3",
        "SM_REDIS_PREFIX": f"t{time.monotonic_ns()}",
        "SM_WEB_PORT": str(free_port()),
        "SM_DATA_DIR": str(tmp_path / "worker-data"),
        "SM_BATCH_MAX_SIZE": "32",
        "SM_INTRA_OP_THREADS": "1",
        "SM_KAFKA_SESSION_TIMEOUT_S": "6",
        "PYTHONPATH": str(REPO),
    }
    return env


def settings_from(env: dict[str, str]) -> Settings:
    overrides = {k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"}
    return load_settings(**overrides)


@pytest.fixture
def worker_factory(stack_env: dict[str, str], tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    workers: list[WorkerProcess] = []

    def make(**extra_env: str) -> WorkerProcess:
        env = {**stack_env, "SM_WEB_PORT": str(free_port()), **extra_env}
        worker = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
