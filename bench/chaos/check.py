"""The verdict: what came out of Kafka and Redis against a batch recomputation of what went in."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from kafka import KafkaConsumer

from bench.chaos.feed import Sent
from bench.chaos.stack import WATCH
from stream_app.pipeline.counts import CountedRecord, Counts, minute_of, recompute
from stream_app.pipeline.keys import record_keys
from stream_app.settings import Settings
from stream_app.testing.snapshot import store_buckets
from stream_app.wiring import redis_store


@dataclass
class Result:
    name: str
    records_in: int = 0
    scored: int = 0
    dead: int = 0
    lost: int = 0
    duplicates: int = 0
    wrong_reason: int = 0
    keys_checked: int = 0
    keys_mismatched: int = 0
    recovery_s: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and self.lost == 0 and self.keys_mismatched == 0 and self.wrong_reason == 0


def read_topic(bootstrap: str, topic: str, idle_s: float = 2.0) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        consumer_timeout_ms=int(idle_s * 1000), fetch_max_bytes=52_428_800,
    )  # fmt: skip
    try:
        return [orjson.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def wait_drained(settings: Settings, sent: list[Sent], timeout: float) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    """Read the output topics until every valid id is scored and every bad record dead-lettered."""
    want_ids = {s.record_id for s in sent if s.record_id}
    want_dead = {(s.topic, s.partition, s.offset) for s in sent if s.reason}
    deadline = time.monotonic() + timeout
    while True:
        scored = read_topic(settings.kafka_bootstrap, settings.topic_scored)
        dead = read_topic(settings.kafka_bootstrap, settings.topic_dead_letter)
        done = want_ids <= {e["id"] for e in scored} and want_dead <= {
            (d["topic"], d["partition"], d["offset"]) for d in dead
        }
        if done or time.monotonic() > deadline:
            return scored, dead
        time.sleep(2)


def redis_aggregates(settings: Settings, minutes: set[int]) -> dict[tuple[str, int], Counts]:
    async def read() -> dict[tuple[str, int], Counts]:
        store = redis_store(settings)
        try:
            return await store_buckets(store, min(minutes), max(minutes))
        finally:
            await store.close()

    return asyncio.run(read()) if minutes else {}


def verdict(name: str, settings: Settings, sent: list[Sent], timeout: float = 240.0) -> Result:
    scored, dead = wait_drained(settings, sent, timeout)
    result = Result(name, records_in=len(sent))
    by_id = {e["id"]: e for e in scored}  # the last delivery of an id
    result.scored, result.duplicates = len(by_id), len(scored) - len(by_id)
    letters = {(d["topic"], d["partition"], d["offset"]): d for d in dead}
    result.dead = len(letters)
    records = []
    for s in sent:
        if s.reason:
            letter = letters.get((s.topic, s.partition, s.offset))
            if letter is None:
                result.lost += 1
            elif letter["reason"] != s.reason:
                result.wrong_reason += 1
            continue
        event = by_id.get(s.record_id)
        if event is None:
            result.lost += 1
            continue
        tracked = event.get("counted") or [e for e in event["entities"] if e in WATCH]  # type: ignore[union-attr]
        ts = datetime.fromisoformat(str(event["created_at"])).timestamp()
        keys = record_keys(str(event["platform"]).lower(), tracked)
        records.append(
            CountedRecord(s.topic, s.partition, s.offset, keys, ts, str(event["label"]), float(event["score"]))
        )  # type: ignore[arg-type]
    expected, late = recompute(records, settings.allowed_lateness_s)
    minutes = {minute_of(r.event_ts) for r in records}
    actual = redis_aggregates(settings, minutes)
    result.keys_checked = len(set(expected) | set(actual))
    for key in set(expected) | set(actual):
        want, got = expected.get(key, Counts()), actual.get(key, Counts())
        labels_ok = (want.negative, want.neutral, want.positive) == (got.negative, got.neutral, got.positive)
        # Scores are compared to 5e-3 a post: INT8 dynamic quantization scales per batch, so a
        # record scored twice (a rebalance) may differ in the 4th decimal; labels must be equal.
        if not labels_ok or abs(want.score_sum - got.score_sum) > 5e-3 * max(1, want.volume):
            result.keys_mismatched += 1
    result.extra["late"] = late
    result.extra["reasons"] = dict(Counter(str(d["reason"]) for d in letters.values()))
    if any(len(orjson.dumps(d)) > 1_000_000 for d in dead):
        result.failures.append("a dead letter over the broker's message size")
    return result
