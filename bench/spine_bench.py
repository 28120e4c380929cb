"""End-to-end spine benchmark on real Kafka, a real worker and real Redis.

1. Bare engine: texts/s of `OnnxClassifier.classify` on the feed's texts, at the worker's batch size.
2. Throughput: a backlog of N records is produced first, then a worker drains it; we time
   from the first count appearing in Redis to the last.
3. Latency: records are produced at a steady rate below capacity; the k-th record's
   latency is when Redis's total volume first reaches k minus when record k was produced.

    python bench/spine_bench.py --records 4000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.progress import Progress

from stream_app.engine.onnx_classifier import OnnxClassifier
from stream_app.generate import generate_stream
from stream_app.infra.kafka_local import LocalKafka, free_port
from stream_app.infra.redis_local import LocalRedis
from stream_app.kafka_admin import create_topics
from stream_app.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


def total_volume(client: redis.Redis, prefix: str) -> int:
    total = 0
    for key in client.scan_iter(f"{prefix}:counts:*", count=1000):
        for raw in client.hvals(key):
            neg, neu, pos, _ = raw.decode().split(",")
            total += int(neg) + int(neu) + int(pos)
    return total


def wait_volume(client: redis.Redis, prefix: str, target: int, timeout: float) -> list[tuple[float, int]]:
    """Poll until the volume reaches target; returns (time, volume) observations."""
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        volume = total_volume(client, prefix)
        seen.append((time.monotonic(), volume))
        if volume >= target:
            break
        time.sleep(0.01)
    return seen


def feed(n: int, seed: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    records = [r for kind, r in generate_stream(n // 600 + 1, 600, seed, start=now) if kind == "post"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    console = Console()
    settings = load_settings()
    result: dict[str, Any] = {"records": args.records, "batch_max_size": settings.batch_max_size}
    backlog = feed(args.records, seed=1)
    result["bare_engine_texts_per_s"] = bare_engine(
        settings.model_dir, [r["text"] for r in backlog], settings.batch_max_size
    )
    console.print(f"bare engine: {result['bare_engine_texts_per_s']:.1f} texts/s")
    workdir = Path(tempfile.mkdtemp(prefix="sm-bench-"))
    with LocalKafka() as kafka, LocalRedis() as redis_server:
        prefix = "bench"
        env = {
            **os.environ,
            "SM_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "SM_REDIS_URL": redis_server.url,
            "SM_WEB_PORT": str(free_port()),
            "SM_DATA_DIR": str(workdir / "w"),
            "SM_REDIS_PREFIX": prefix,
            "SM_LOG_LEVEL": "WARNING",
        }
        live = load_settings(kafka_bootstrap=kafka.bootstrap, redis_url=redis_server.url)
        create_topics(live)
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5, acks=1)
        for record in backlog:
            producer.send(live.topic_posts, value=orjson.dumps(record))
        producer.flush()
        client = redis.Redis.from_url(redis_server.url)
        log = (workdir / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream_app.cli", "worker"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            with Progress(console=console) as progress:
                task = progress.add_task("draining backlog", total=len(backlog))
                first = None
                while True:
                    volume = total_volume(client, prefix)
                    progress.update(task, completed=volume)
                    if volume and first is None:
                        first = (time.monotonic(), volume)
                    if volume >= len(backlog):
                        break
                    if worker.poll() is not None:
                        raise RuntimeError((workdir / "worker.log").read_text()[-3000:])
                    time.sleep(0.02)
            assert first is not None
            elapsed = time.monotonic() - first[0]
            result["e2e_msgs_per_s"] = (len(backlog) - first[1]) / elapsed
            result["e2e_to_engine_ratio"] = result["e2e_msgs_per_s"] / result["bare_engine_texts_per_s"]
            console.print(
                f"end to end: {result['e2e_msgs_per_s']:.1f} msg/s "
                f"({result['e2e_to_engine_ratio']:.2f} of the bare engine)"
            )
            ops_before = client.info("stats")["total_commands_processed"]
            rate = 0.5 * result["e2e_msgs_per_s"]
            steady = feed(int(rate * args.latency_seconds), seed=2)
            produced_at: list[float] = []
            base = total_volume(client, prefix)
            start = time.monotonic()
            for i, record in enumerate(steady):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                producer.send(live.topic_posts, value=orjson.dumps(record))
                producer.flush()
                produced_at.append(time.monotonic())
            seen = wait_volume(client, prefix, base + len(steady), timeout=120)
            redis_ops = client.info("stats")["total_commands_processed"] - ops_before
            result["redis_ops_per_s_during_latency_run"] = redis_ops / (seen[-1][0] - start)
            latencies = []
            for k, t_produced in enumerate(produced_at, start=1):
                t_counted = next((t for t, v in seen if v - base >= k), None)
                if t_counted is not None:
                    latencies.append(max(0.0, t_counted - t_produced))
            latencies.sort()
            result["latency_rate_msgs_per_s"] = rate
            result["latency_p50_ms"] = 1000 * latencies[len(latencies) // 2]
            result["latency_p99_ms"] = 1000 * latencies[int(len(latencies) * 0.99) - 1]
            console.print(
                f"produce→Redis latency at {rate:.0f} msg/s: p50 {result['latency_p50_ms']:.0f} ms, "
                f"p99 {result['latency_p99_ms']:.0f} ms"
            )
        finally:
            worker.terminate()
            worker.wait(30)
            producer.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spine_bench.json").write_text(json.dumps(result, indent=2))
    console.print(result)


if __name__ == "__main__":
    main()
