"""Topic creation and replay with kafka-python (plain clients, no Faust)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from stream_app.ingest.kafka_config import KafkaClientConfig
from stream_app.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    return KafkaClientConfig.from_settings(settings).kafka_python()


def ping(bootstrap: str, request_timeout_ms: int = 5000) -> None:
    """Raises unless the broker answers a metadata request (its port opens before that)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        admin.list_topics()
    finally:
        admin.close()


def topic_plan(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the service reads or writes, with its configs."""
    week = str(7 * 86400 * 1000)
    return {
        settings.topic_posts: {"retention.ms": week},
        settings.topic_reviews: {"retention.ms": week},
        settings.topic_scored: {"retention.ms": week},
        settings.topic_dead_letter: {"retention.ms": str(30 * 86400 * 1000)},
        settings.topic_alerts: {"retention.ms": str(30 * 86400 * 1000)},
    }


def create_topics(settings: Settings) -> dict[str, str]:
    """Create missing topics with explicit partition counts; returns name -> 'created'|'exists'."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**client_options(settings))
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        for name, configs in topic_plan(settings).items():
            if name in existing:
                result[name] = "exists"
                continue
            try:
                admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication, topic_configs=configs)]
                )
                result[name] = "created"
            except TopicAlreadyExistsError:
                result[name] = "exists"
        return result
    finally:
        admin.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """JSONL lines or CSV rows as dicts, in file order."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
        return
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def replay(
    settings: Settings,
    records: Iterable[dict[str, Any] | bytes],
    topic: str,
    rate: float | None = None,
    progress: Any = None,
) -> int:
    """Produce records to one topic at `rate` per second (None: as fast as possible)."""
    return replay_mixed(settings, ((topic, r) for r in records), rate, progress)


def replay_mixed(
    settings: Settings,
    items: Iterable[tuple[str, dict[str, Any] | bytes]],
    rate: float | None = None,
    progress: Any = None,
) -> int:
    """Produce (topic, record) pairs in the order given, e.g. posts and reviews interleaved in
    event-time order; returns the count."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**client_options(settings), linger_ms=5, acks="all")
    sent = 0
    started = time.monotonic()
    try:
        for topic, record in items:
            value = record if isinstance(record, bytes) else orjson.dumps(record)
            key = None if isinstance(record, bytes) else str(record.get("id", "")).encode() or None
            producer.send(topic, key=key, value=value)
            sent += 1
            if progress is not None:
                progress(1)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
    return sent


def read_all(settings: Settings, topic: str, idle_s: float = 3.0) -> Iterator[dict[str, Any]]:
    """Every record of `topic` from the beginning (JSON), until it has been quiet for `idle_s`.
    A group-less consumer: reading commits nothing and moves no worker's offsets."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        **client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_s * 1000),
        fetch_max_bytes=52_428_800,
    )
    try:
        for message in consumer:
            try:
                yield orjson.loads(message.value)
            except orjson.JSONDecodeError:
                continue  # not ours: the topic holds only JSON the service wrote
    finally:
        consumer.close()
