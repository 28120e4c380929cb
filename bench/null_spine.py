"""The framework's ceiling: the spine with a null model, against a bare aiokafka loop.

Run as `python bench/spine_bench.py --null-model [--records N] [--json OUT]`. One run, on one
local broker and one Redis:

1. Bare loop: the backlog produced to its own input topic, then consumed and produced to an
   output topic by a plain aiokafka loop (batches of the worker's size, every send awaited,
   offsets committed): what Kafka alone allows. No validation, no Redis.
2. Null-model worker: the real worker process (`SM_MODEL_DIR=null:`), with the watch-list,
   dynamic entities and alerts on, drains the same backlog from fresh topics; timed from the
   first count in Redis to the last, with the worker's CPU over the same span.
3. Paired CPU (unless `--no-engine-pair`): the real-model worker drains the backlog too, and
   the bare engine classifies the same texts at the worker's batch size, back to back:
   worker CPU ms per message against engine CPU ms per text.
4. Latency (unless `--latency-seconds 0`): the null-model worker at half its measured rate and
   at a tenth of it (`--latency-loads`), each from a fresh worker: p50 and p99 of Kafka record
   produced -> counted in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from stream_app.ingest.feeder import Feeder
from stream_app.settings import Settings, load_settings
from stream_app.testing.kafka_local import LocalKafka
from stream_app.testing.redis_local import LocalRedis
from stream_app.wiring import create_topics


def live_settings(env: dict[str, str]) -> Settings:
    return load_settings(**{k[3:].lower(): v for k, v in env.items() if k.startswith("SM_") and k != "SM_LOCAL_CACHE"})


def produce_backlog(bootstrap: str, topic: str, backlog: list[dict[str, Any]]) -> None:
    with Feeder(bootstrap, acks=1) as feeder:
        feeder.feed((topic, record) for record in backlog)


async def _bare_loop(bootstrap: str, source: str, target: str, n: int, batch: int) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    try:
        seen, first = 0, None
        deadline = time.monotonic() + 300
        while seen < n and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=500, max_records=batch)
            pending = [await producer.send(target, value=m.value, key=m.key) for msgs in polled.values() for m in msgs]
            if not pending:
                continue
            await asyncio.gather(*pending)
            await consumer.commit()
            seen += len(pending)
            if first is None:  # timed from the first batch done, as the worker from its first count
                first = (time.monotonic(), time.process_time(), seen)
        assert first is not None and seen >= n, f"bare loop saw {seen} of {n}"
        elapsed = time.monotonic() - first[0]
        return {
            "msgs_per_s": (seen - first[2]) / elapsed,
            "cpu_ms_per_msg": 1000 * (time.process_time() - first[1]) / (seen - first[2]),
        }
    finally:
        await consumer.stop()
        await producer.stop()


def bare_loop(kafka: LocalKafka, backlog: list[dict[str, Any]], env: dict[str, str], batch: int) -> dict[str, float]:
    live = live_settings(env)
    create_topics(live)
    produce_backlog(kafka.bootstrap, live.topic_posts, backlog)
    return asyncio.run(_bare_loop(kafka.bootstrap, live.topic_posts, live.topic_scored, len(backlog), batch))


def drain(
    kafka: LocalKafka, redis_server: LocalRedis, backlog: list[dict[str, Any]], env: dict[str, str], log: Path
) -> dict[str, float]:
    """A worker drains the backlog: msgs/s and its CPU ms/msg from the first count to the last."""
    from bench.spine_kit import process_cpu_s, source_volume, start_worker

    live = live_settings(env)
    create_topics(live)
    produce_backlog(kafka.bootstrap, live.topic_posts, backlog)
    client = redis.Redis.from_url(redis_server.url)
    worker = start_worker(env, log)
    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            volume = source_volume(client, live.redis_prefix)
            if volume and first is None:
                first = (time.monotonic(), process_cpu_s(worker.pid), volume)
            if volume >= len(backlog):
                break
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.02)
        assert first is not None and volume >= len(backlog), log.read_text()[-3000:]
        counted = len(backlog) - first[2]
        return {
            "msgs_per_s": counted / (time.monotonic() - first[0]),
            "cpu_ms_per_msg": 1000 * (process_cpu_s(worker.pid) - first[1]) / counted,
        }
    finally:
        worker.terminate()
        worker.wait(30)


def engine_cpu(settings: Settings, texts: list[str], batch: int) -> dict[str, float]:
    """The bare engine as the worker configures it: CPU ms per text (all threads) and texts/s."""
    from stream_app.engine.swap import load_classifier
    from stream_app.wiring import load_options

    classifier = load_classifier(settings.model_dir, load_options(settings))
    classifier.classify(texts[:batch])
    wall, cpu = time.monotonic(), time.process_time()
    for i in range(0, len(texts), batch):
        classifier.classify(texts[i : i + batch])
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"texts_per_s": len(texts) / wall, "cpu_ms_per_text": 1000 * cpu / len(texts), "info": vars(classifier.info)}


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from bench.spine_kit import REPO, feed, latency_run, worker_env

    settings = load_settings()
    batch = settings.batch_max_size
    backlog = feed(args.records, seed=1)
    watchlist = str(REPO / "deploy" / "watchlist" / "demo.yaml")
    null_env = {"SM_MODEL_DIR": "null:", "SM_WATCHLIST": watchlist, "SM_ALERTS_ENABLED": "true"}
    workdir = Path(args.workdir or __import__("tempfile").mkdtemp(prefix="sm-null-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"records": len(backlog), "batch_max_size": batch, "entities": True, "alerts": True}
    with LocalKafka() as kafka, LocalRedis() as redis_server:
        tag = uuid.uuid4().hex[:6]
        bare = bare_loop(kafka, backlog, worker_env(kafka, redis_server, f"bare{tag}", workdir, {}), batch)
        console.print(f"bare aiokafka loop: {bare['msgs_per_s']:.0f} msg/s")
        env = worker_env(kafka, redis_server, f"null{tag}", workdir, null_env)
        null = drain(kafka, redis_server, backlog, env, workdir / "null.log")
        console.print(f"null-model worker: {null['msgs_per_s']:.0f} msg/s, {null['cpu_ms_per_msg']:.3f} CPU ms/msg")
        result |= {
            "null_model_msgs_per_s": null["msgs_per_s"],
            "bare_loop_msgs_per_s": bare["msgs_per_s"],
            "null_to_bare_ratio": null["msgs_per_s"] / bare["msgs_per_s"],
            "null_model_worker_cpu_ms_per_msg": null["cpu_ms_per_msg"],
            "bare_loop_cpu_ms_per_msg": bare["cpu_ms_per_msg"],
        }
        if args.engine_pair:
            env = worker_env(kafka, redis_server, f"real{tag}", workdir, {"SM_WATCHLIST": watchlist})
            real = drain(kafka, redis_server, backlog, env, workdir / "real.log")
            engine = engine_cpu(live_settings(env), [r["text"] for r in backlog], batch)
            result["paired_cpu"] = {
                "batch": batch,
                "real_worker_msgs_per_s": real["msgs_per_s"],
                "real_worker_cpu_ms_per_msg": real["cpu_ms_per_msg"],
                "engine_texts_per_s": engine["texts_per_s"],
                "engine_cpu_ms_per_text": engine["cpu_ms_per_text"],
                "engine": engine["info"],
                "worker_to_engine_cpu_ratio": real["cpu_ms_per_msg"] / engine["cpu_ms_per_text"],
            }
            console.print(result["paired_cpu"])
        for load in (float(x) for x in args.latency_loads.split(",")) if args.latency_seconds > 0 else ():
            # Event time advances with wall time here (records per event minute = rate x 60): a
            # compressed feed makes the alert detector step many minutes per tick, which is a
            # backlog's cost, not a live stream's.
            rate = load * null["msgs_per_s"]
            row = latency_run(
                kafka,
                redis_server,
                rate,
                args.latency_seconds,
                null_env,
                workdir / f"lat{load:g}",
                console,
                int(rate * 60),
            )
            name = "half_capacity" if load == 0.5 else f"{100 * load:g}pct_capacity"
            result[f"null_model_latency_at_{name}"] = {"load": load, **row}
            console.print(f"latency at {100 * load:g} % load: p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(result)
    return result
