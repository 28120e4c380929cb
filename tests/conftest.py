"""Shared fixtures: real Kafka, real Redis and a real worker process, started per session."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.settings import DEFAULT_MODEL_DIR
from stream_app.testing.kafka_local import LocalKafka, free_port
from stream_app.testing.redis_local import LocalRedis
from tests.support.stack import REPO, ApiProcess, WorkerProcess


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


@pytest.fixture
def api_factory(stack_env: dict[str, str], tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """`sentiment-monitor api` processes on the test's Redis prefix (queries and the live page)."""
    apis: list[ApiProcess] = []

    def make(**extra_env: str) -> ApiProcess:
        env = {**stack_env, "SM_API_PORT": str(free_port()), **extra_env}
        api = ApiProcess(env, tmp_path / f"api-{len(apis)}.log").start()
        apis.append(api)
        return api

    yield make
    for api in apis:
        api.stop()
