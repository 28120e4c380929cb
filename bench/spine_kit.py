"""What the spine benches share: the feed, a worker's environment and process, Redis volume and CPU,
and the latency run (bench/spine_bench.py and bench/null_spine.py both use it)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.progress import Progress

from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.ingest.feeder import Feeder
from stream_app.pipeline.counts import Counts, day_of
from stream_app.pipeline.keys import RedisKeys, source_key
from stream_app.settings import load_settings
from stream_app.testing.generate import generate_stream
from stream_app.testing.kafka_local import LocalKafka, free_port
from stream_app.testing.redis_local import LocalRedis
from stream_app.wiring import create_topics

REPO = Path(__file__).resolve().parents[1]


def wait_volume(client: redis.Redis, prefix: str, target: int, timeout: float) -> list[tuple[float, int]]:
    """Poll until the volume reaches target; returns (time, volume) observations."""
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        volume = source_volume(client, prefix)
        seen.append((time.monotonic(), volume))
        if volume >= target:
            break
        time.sleep(0.01)
    return seen


def feed(n: int, seed: int, per_minute: int = 600) -> list[dict[str, Any]]:
    """Event times end now: the worker dead-letters records more than a few minutes in the future."""
    minutes = n // per_minute + 1
    start = datetime.now(UTC) - timedelta(minutes=minutes)
    records = [r for kind, r in generate_stream(minutes, per_minute, seed, start=start) if kind == "post"]
    return records[:n]


def bare_engine(model_dir: Path, texts: list[str], batch: int, runs: int = 3) -> float:
    classifier = OnnxClassifier(model_dir, provider="cpu")
    classifier.classify(texts[:batch])
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            classifier.classify(texts[i : i + batch])
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def worker_env(
    kafka: LocalKafka, redis_server: LocalRedis, tag: str, workdir: Path, extra_env: dict[str, str]
) -> dict[str, str]:
    """A worker's environment with its own topics, consumer group and Redis prefix."""
    return {
        **os.environ,
        "SM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SM_REDIS_URL": redis_server.url,
        "SM_WEB_PORT": str(free_port()),
        "SM_DATA_DIR": str(workdir / tag),
        "SM_REDIS_PREFIX": tag,
        "SM_APP_ID": f"bench-{tag}",
        "SM_TOPIC_POSTS": f"posts-{tag}",
        "SM_TOPIC_REVIEWS": f"reviews-{tag}",
        "SM_TOPIC_SCORED": f"scored-{tag}",
        "SM_TOPIC_DEAD_LETTER": f"dead-{tag}",
        "SM_LOG_LEVEL": "WARNING",
        **extra_env,
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stream_app.cli", "worker"],
        env=env,
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def drain_once(
    kafka: LocalKafka,
    redis_server: LocalRedis,
    backlog: list[dict[str, Any]],
    tag: str,
    extra_env: dict[str, str],
    workdir: Path,
    console: Console,
) -> float:
    """Produce the backlog to fresh topics, start a worker, time the drain into Redis: msgs/s."""
    env = worker_env(kafka, redis_server, tag, workdir, extra_env)
    live = load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"})
    create_topics(live)
    with Feeder(kafka.bootstrap, acks=1) as feeder:
        feeder.feed((live.topic_posts, record) for record in backlog)
    client = redis.Redis.from_url(redis_server.url)
    worker = start_worker(env, workdir / f"{tag}.log")
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"draining ({tag})", total=len(backlog))
            first = None
            while True:
                volume = source_volume(client, tag)
                progress.update(task, completed=volume)
                if volume and first is None:
                    first = (time.monotonic(), volume)
                if volume >= len(backlog):
                    break
                if worker.poll() is not None:
                    raise RuntimeError((workdir / f"{tag}.log").read_text()[-3000:])
                time.sleep(0.05)
        assert first is not None
        return (len(backlog) - first[1]) / (time.monotonic() - first[0])
    finally:
        worker.terminate()
        worker.wait(30)


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def source_volume(client: redis.Redis, prefix: str) -> int:
    """Records counted so far: the per-source aggregates only (each record is in exactly one),
    from their hour roll-ups of today and yesterday (the feeds end now)."""
    keys = RedisKeys(prefix)
    today = day_of(time.time())
    total = 0
    for raw_source in client.smembers(keys.sources()):  # type: ignore[union-attr]
        source = raw_source.decode() if isinstance(raw_source, bytes) else str(raw_source)
        for day in (today - 86400, today):
            total += sum(Counts.decode(raw).volume for raw in client.hvals(keys.hours(source_key(source), day)))  # type: ignore[union-attr]
    return total


def latency_run(
    kafka: LocalKafka,
    redis_server: LocalRedis,
    rate: float,
    seconds: float,
    extra_env: dict[str, str],
    workdir: Path,
    console: Console,
    per_minute: int = 600,
) -> dict[str, float]:
    """Steady production below capacity; the k-th record's latency is when Redis first counts k records
    minus when record k was produced."""
    tag = f"latency-{workdir.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    env = worker_env(kafka, redis_server, tag, workdir, extra_env)
    live = load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"})
    create_topics(live)
    client = redis.Redis.from_url(redis_server.url)
    worker = start_worker(env, workdir / f"{tag}.log")
    producer = Feeder(kafka.bootstrap, acks=1, linger_ms=0)
    try:
        warm = feed(20, seed=3)
        for record in warm:
            producer.send(live.topic_posts, record)
        producer.flush()
        wait_volume(client, tag, len(warm), timeout=180)
        steady = feed(int(rate * seconds), seed=2, per_minute=per_minute)
        ops_before = client.info("stats")["total_commands_processed"]
        cpu_before = process_cpu_s(worker.pid), redis_cpu_s(client)
        produced_at: list[float] = []
        seen: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll() -> None:  # observe Redis while producing, not only afterwards
            poller = redis.Redis.from_url(redis_server.url)
            while not stop.is_set():
                seen.append((time.monotonic(), source_volume(poller, tag)))
                time.sleep(0.025)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        start = time.monotonic()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"steady stream at {rate:.0f}/s", total=len(steady))
            for i, record in enumerate(steady):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                producer.send(live.topic_posts, record)
                produced_at.append(time.monotonic())
                if i % 50 == 49:
                    progress.advance(task, 50)
        producer.flush()
        deadline = time.monotonic() + 180
        while (not seen or seen[-1][1] < len(warm) + len(steady)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join()
        worker_cpu, server_cpu = process_cpu_s(worker.pid) - cpu_before[0], redis_cpu_s(client) - cpu_before[1]
        elapsed = seen[-1][0] - start
        ops = client.info("stats")["total_commands_processed"] - ops_before
        latencies = sorted(
            max(0.0, next(t for t, v in seen if v - len(warm) >= k) - t_produced)
            for k, t_produced in enumerate(produced_at, start=1)
            if any(v - len(warm) >= k for _, v in seen)
        )
        return {
            "rate_msgs_per_s": rate,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[max(0, int(len(latencies) * 0.99) - 1)],
            "redis_commands_per_s": ops / elapsed,
            "worker_cpu_ms_per_msg": 1000 * worker_cpu / len(steady),
            "redis_cpu_ms_per_msg": 1000 * server_cpu / len(steady),
        }
    finally:
        worker.terminate()
        worker.wait(30)
        producer.close()


def steady_cost(
    kafka: LocalKafka,
    redis_server: LocalRedis,
    rate: float,
    args: argparse.Namespace,
    configs: dict[str, dict[str, str]],
    workdir: Path,
    console: Console,
) -> dict[str, Any]:
    """The aggregation's cost at a steady rate, as CPU per message (worker plus Redis), each
    configuration right after the other. A drained backlog prices it badly: the alert
    detector then steps through minutes of event time in one burst."""
    if not args.steady_repeats:
        return {}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    for repeat in range(args.steady_repeats):
        for name, extra in configs.items():
            row = latency_run(
                kafka, redis_server, rate, args.latency_seconds, extra, workdir / f"s-{name}{repeat}", console
            )
            cpu[name].append(row["worker_cpu_ms_per_msg"] + row["redis_cpu_ms_per_msg"])
        console.print(f"steady {repeat + 1}: " + ", ".join(f"{n} {v[-1]:.2f} CPU ms/msg" for n, v in cpu.items()))
    return {
        "rate_msgs_per_s": rate,
        "cpu_ms_per_msg": {name: statistics.median(values) for name, values in cpu.items()},
        "per_repeat_cpu_ms_per_msg": cpu,
        "aggregation_cpu_overhead": 1
        - statistics.median(c / w for c, w in zip(cpu["counts_only"], cpu["with_entities"], strict=True)),
    }
