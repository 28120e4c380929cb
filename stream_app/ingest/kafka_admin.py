"""Topic creation and replay with kafka-python (plain clients, no Faust)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from stream_app.ingest.feeder import Feeder
from stream_app.ingest.kafka_config import KafkaClientConfig, Topics


def ping(bootstrap: str, request_timeout_ms: int = 5000) -> None:
    """Raises unless the broker answers a metadata request (its port opens before that)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        admin.list_topics()
    finally:
        admin.close()


def topic_plan(topics: Topics) -> dict[str, dict[str, str]]:
    """Every topic the service reads or writes, with its configs. The scored events are kept a
    week: `aggregates rebuild` recomputes the aggregates (7 days) from them."""
    week = str(7 * 86400 * 1000)
    return {
        topics.posts: {"retention.ms": week},
        topics.reviews: {"retention.ms": week},
        topics.scored: {"retention.ms": week},
        topics.dead_letter: {"retention.ms": str(30 * 86400 * 1000)},
        topics.alerts: {"retention.ms": str(30 * 86400 * 1000)},
    }


def create_topics(kafka: KafkaClientConfig, topics: Topics) -> dict[str, str]:
    """Create missing topics with explicit partition counts; returns name -> 'created'|'exists'."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**kafka.kafka_python())
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        for name, configs in topic_plan(topics).items():
            if name in existing:
                result[name] = "exists"
                continue
            try:
                admin.create_topics([NewTopic(name, topics.partitions, topics.replication, topic_configs=configs)])
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
    kafka: KafkaClientConfig,
    items: Iterable[tuple[str, dict[str, Any] | bytes]],
    rate: float | None = None,
    progress: Any = None,
) -> int:
    """Produce (topic, record) pairs in the order given (e.g. posts and reviews interleaved in
    event-time order) at `rate` per second; returns the count."""
    with Feeder(kafka) as feeder:
        return feeder.feed(items, rate, progress)


def read_all(kafka: KafkaClientConfig, topic: str, idle_s: float = 3.0) -> Iterator[dict[str, Any]]:
    """Every record of `topic` from the beginning (JSON), until it has been quiet for `idle_s`.
    A group-less consumer: reading commits nothing and moves no worker's offsets."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        **kafka.kafka_python(),
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
