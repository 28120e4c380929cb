"""The one Kafka producer that feeds topics: `replay`, the demo, the tests, the benches and the chaos suite.

A feeder sends JSON records (keyed by their `id`) or raw bytes, optionally paced to a rate, and
can say where each record landed (topic, partition, offset), which the chaos suite's verdict
needs. `durable` retries a send for as long as the broker is away (the chaos suite kills it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from stream_app.ingest.kafka_config import KafkaClientConfig

Record = dict[str, Any] | bytes | None


class Feeder:
    def __init__(
        self,
        kafka: KafkaClientConfig | str,
        *,
        acks: int | str = "all",
        linger_ms: int = 5,
        durable: bool = False,
        max_request_size: int = 1_048_576,
    ) -> None:
        from kafka import KafkaProducer

        config = KafkaClientConfig.plain(kafka) if isinstance(kafka, str) else kafka
        options: dict[str, Any] = {"acks": acks, "linger_ms": linger_ms, "max_request_size": max_request_size}
        if durable:  # keep every record through a broker restart, in order
            options.update(
                retries=2**31 - 1,
                max_in_flight_requests_per_connection=1,
                request_timeout_ms=30_000,
                delivery_timeout_ms=600_000,
            )
        self.producer = KafkaProducer(**config.kafka_python(), **options)

    def send(self, topic: str, record: Record, key: bytes | None = None) -> Any:
        """Send one record (a dict as JSON keyed by its `id`, or bytes as they are); returns the
        producer's future, whose `get()` says where the record landed."""
        if isinstance(record, dict):
            value: bytes | None = orjson.dumps(record)
            key = key if key is not None else (str(record.get("id", "")).encode() or None)
        else:
            value = record
        if value is None and key is None:
            key = b"null-value"  # Kafka needs a key or a value
        return self.producer.send(topic, key=key, value=value)

    def feed(
        self,
        items: Iterable[tuple[str, Record]],
        rate: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """(topic, record) pairs in order, at `rate` per second (None: as fast as possible),
        then flushed; returns the count."""
        sent = 0
        started = time.monotonic()
        for topic, record in items:
            self.send(topic, record)
            sent += 1
            if progress is not None:
                progress(1)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        self.flush()
        return sent

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()

    def __enter__(self) -> Feeder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
