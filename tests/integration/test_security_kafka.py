"""Kafka with SASL_SSL and SCRAM-SHA-512 against a real broker with a certificate made here:
`topics create`, the worker and `replay` work through that listener with the CA file from
settings; a wrong password or an untrusted certificate stops start-up at once, with exit code 2
and one line naming the setting, never the secret."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream_app.testing.kafka_local import LocalKafka, free_port
from stream_app.testing.redis_local import LocalRedis
from tests.support.stack import REPO, WorkerProcess
from tests.support.streamkit import drain
from tests.support.tls_certs import KEYSTORE_PASSWORD, Certs, make_certs

pytestmark = pytest.mark.integration
USER, PASSWORD = "sentiment", "scram-pass-for-the-test"


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Certs, Certs]]:
    directory = tmp_path_factory.mktemp("kafka-tls")
    certs, stranger = make_certs(directory / "broker", "kafka"), make_certs(directory / "other", "other")
    broker = LocalKafka(keystore=certs.keystore, keystore_password=KEYSTORE_PASSWORD, scram_users={USER: PASSWORD})
    with broker:
        yield broker, certs, stranger


@pytest.fixture
def sasl_env(sasl_kafka, redis_server: LocalRedis, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    broker, certs, _ = sasl_kafka
    suffix = f"{time.monotonic_ns() % 10**9}"
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "SM_KAFKA_BOOTSTRAP": broker.sasl_ssl_bootstrap,
        "SM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "SM_KAFKA_SASL_USERNAME": USER,
        "SM_KAFKA_SASL_PASSWORD": PASSWORD,
        "SM_KAFKA_SSL_CAFILE": str(certs.ca),
        "SM_REDIS_URL": redis_server.url,
        "SM_REDIS_PREFIX": f"sasl{suffix}",
        "SM_APP_ID": f"sm-sasl-{suffix}",
        "SM_TOPIC_POSTS": f"posts-{suffix}",
        "SM_TOPIC_REVIEWS": f"reviews-{suffix}",
        "SM_TOPIC_SCORED": f"scored-{suffix}",
        "SM_TOPIC_DEAD_LETTER": f"dead-{suffix}",
        "SM_TOPIC_ALERTS": f"alerts-{suffix}",
        "SM_TOPIC_PARTITIONS": "2",
        "SM_WEB_PORT": str(free_port()),
        "SM_DATA_DIR": str(tmp_path / "worker-data"),
        "SM_INTRA_OP_THREADS": "1",
        "SM_KAFKA_SESSION_TIMEOUT_S": "6",
        "SM_ALERTS_ENABLED": "false",
    }


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_app.cli", *args], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_topics_worker_and_replay_work_over_sasl_ssl(sasl_kafka, sasl_env, tmp_path):  # type: ignore[no-untyped-def]
    broker = sasl_kafka[0]
    created = _cli(sasl_env, "topics", "create")
    assert created.returncode == 0, created.stderr
    assert f"{sasl_env['SM_TOPIC_POSTS']}: created" in created.stdout

    worker = WorkerProcess(sasl_env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready(180)
        feed = tmp_path / "posts.jsonl"
        now = datetime.now(UTC).replace(microsecond=0).isoformat()  # inside the event-time bounds
        post = {"created_at": now, "platform": "x"}
        posts = [{**post, "id": f"p{i}", "text": f"I love this phone, day {i}"} for i in range(20)]
        feed.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in posts))
        replayed = _cli(sasl_env, "replay", str(feed), "--topic", sasl_env["SM_TOPIC_POSTS"])
        assert replayed.returncode == 0, replayed.stderr
        # Read back on the broker's PLAINTEXT listener: the same topics, outside the service.
        scored = drain(broker.bootstrap, sasl_env["SM_TOPIC_SCORED"], 20, timeout=120)
        assert sorted(e["id"] for e in scored) == sorted(p["id"] for p in posts)
        assert worker.alive()
        assert PASSWORD not in worker.log_tail(1_000_000)
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("case", "setting"),
    [("wrong_password", "SM_KAFKA_SASL_PASSWORD"), ("untrusted_certificate", "SM_KAFKA_SSL_CAFILE")],
)
def test_bad_credentials_stop_start_up_at_once(sasl_kafka, sasl_env, tmp_path, case, setting):  # type: ignore[no-untyped-def]
    _, _, stranger = sasl_kafka
    env = dict(sasl_env)
    secret = "not-the-password-9f3"
    if case == "wrong_password":
        env["SM_KAFKA_SASL_PASSWORD"] = secret
    else:
        env["SM_KAFKA_SSL_CAFILE"] = str(stranger.ca)
    feed = tmp_path / "one.jsonl"
    feed.write_text('{"id": "x"}\n')
    for command in (["topics", "create"], ["replay", str(feed), "--topic", env["SM_TOPIC_POSTS"]], ["worker"]):
        started = time.monotonic()
        done = _cli(env, *command, timeout=60)
        elapsed = time.monotonic() - started
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and setting in lines[0], (command, done.stderr)
        assert secret not in done.stderr + done.stdout and PASSWORD not in done.stderr + done.stdout
        assert elapsed < 90, (command, elapsed)  # no retry loop: the CLI's import time plus one handshake
