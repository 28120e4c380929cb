"""The processes a chaos run owns: one Kafka broker, one Redis with an append-only file, workers.

Only processes started here are ever signalled, by their own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stream_app.settings import Settings, load_settings
from stream_app.testing.kafka_local import LocalKafka, free_port, free_ports, wait_for_port
from stream_app.testing.processes import WorkerProcess
from stream_app.testing.redis_local import find_redis_server

REPO = Path(__file__).resolve().parents[2]
WATCH = ("Veltro Motors", "Veltro Motors|src:reddit", "Quanta Bank", "a:b%7C")


@dataclass
class AofRedis:
    """redis-server with appendonly (fsync always) on a fixed port, so it can be killed and restarted."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> AofRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for_port(self.port, 20, self.process)
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        if sig == signal.SIGKILL:
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


def start_kafka(root: Path) -> LocalKafka:
    port, controller = free_ports(2)
    return LocalKafka(port=port, controller_port=controller, data_dir=root / "kafka").start()


def kill9_kafka(kafka: LocalKafka) -> None:
    process = kafka._process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    kafka._process = None


def write_watchlist(path: Path) -> Path:
    lines = ["entities:"] + [f"  - name: {name!r}\n    aliases: []" for name in WATCH]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Stack:
    """One scenario's view of the shared broker and Redis: its own topics, group and key prefix."""

    kafka: LocalKafka
    redis: AofRedis
    root: Path
    name: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = f"{self.name}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SM_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "SM_REDIS_URL": self.redis.url,
            "SM_APP_ID": f"chaos-{tag}",
            "SM_TOPIC_POSTS": f"posts-{tag}",
            "SM_TOPIC_REVIEWS": f"reviews-{tag}",
            "SM_TOPIC_SCORED": f"scored-{tag}",
            "SM_TOPIC_DEAD_LETTER": f"dead-{tag}",
            "SM_TOPIC_ALERTS": f"alerts-{tag}",
            "SM_TOPIC_PARTITIONS": "3",
            "SM_REDIS_PREFIX": f"c{time.monotonic_ns() % 10**9}",
            "SM_WATCHLIST": str(write_watchlist(self.root / f"watch-{self.name}.yaml")),
            "SM_MAX_DYNAMIC_ENTITIES": "0",
            "SM_ALERTS_ENABLED": "false",
            "SM_BATCH_MAX_SIZE": "32",
            "SM_INTRA_OP_THREADS": "1",
            "SM_DATA_DIR": str(self.root / f"data-{self.name}"),
        }
        self.settings.model_dump()  # validate early
        from stream_app.wiring import create_topics

        create_topics(self.settings)

    @property
    def settings(self) -> Settings:
        return load_settings(**{k[3:].lower(): v for k, v in self.env.items() if k.startswith("SM_")})

    def worker(self, slot: int) -> Worker:
        env = {**self.env, "SM_WEB_PORT": str(free_port()), "SM_KAFKA_GROUP_INSTANCE_ID": f"{self.name}-w{slot}"}
        return Worker(env, self.root / f"{self.name}-w{slot}.log").start()


Worker = WorkerProcess  # the one launcher (stream_app/testing/processes.py)


def temp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="sm-chaos-"))
