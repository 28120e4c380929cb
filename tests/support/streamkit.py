"""Helpers for integration tests: produce raw records, drain output topics, read Redis."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TypeVar

import orjson
from kafka import KafkaConsumer

from stream_app.ingest.feeder import Feeder
from stream_app.pipeline.counts import CountedRecord, Counts, minute_of, recompute
from stream_app.settings import Settings
from stream_app.wiring import redis_store


def produce(bootstrap: str, topic: str, values: Iterable[bytes], keys: Iterable[bytes | None] | None = None) -> int:
    """Raw values into one topic, through the project's one feeder."""
    key_list = list(keys) if keys is not None else None
    with Feeder(bootstrap) as feeder:
        count = 0
        for i, value in enumerate(values):
            feeder.send(topic, value, key_list[i] if key_list else None)
            count += 1
        feeder.flush()
    return count


def drain(bootstrap: str, topic: str, expected: int, timeout: float = 180.0, settle: float = 3.0) -> list[dict]:
    """Read `topic` from the start until `expected` records arrived (then `settle` more seconds)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    settled_at = None
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                out.append(orjson.loads(message.value))
            if len(out) >= expected:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
    finally:
        consumer.close()
    return out


T = TypeVar("T")


def settle(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Read until `done` holds or time runs out, and return the last read for the caller to
    assert on. Redis is written just after a batch is published, so a test that has seen every
    output record may still be a moment ahead of the aggregates."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.3)
        value = read()
    return value


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] = lambda: "") -> None:
    """Poll `predicate` until true; on timeout fail, saying what was awaited (and a log tail)."""
    if not settle(predicate, bool, timeout):
        raise AssertionError(f"timed out waiting for {what}\n{log()}")


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """GET with an optional bearer token; an error status is returned, not raised."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def same_volumes(actual: dict[tuple[str, int], Counts], expected: dict[tuple[str, int], Counts]) -> bool:
    return set(actual) == set(expected) and all(actual[k].volume == v.volume for k, v in expected.items())


def redis_counts(settings: Settings, sources: Iterable[str], minutes: Iterable[int]) -> dict[tuple[str, int], Counts]:
    async def read() -> dict[tuple[str, int], Counts]:
        store = redis_store(settings)
        try:
            out = {}
            wanted = sorted(minutes)
            for source in sources:
                if not wanted:
                    break
                for minute, total in (await store.minutes(f"src:{source}", wanted[0], wanted[-1])).items():
                    if total.volume and minute in wanted:
                        out[(f"src:{source}", minute)] = total
            return out
        finally:
            await store.close()

    return asyncio.run(read())


def oracle_from_scored(scored: list[dict]) -> dict[tuple[str, int], Counts]:
    """Recompute per-(source, minute) counts from the enriched events, one per id."""
    from datetime import datetime

    unique = {event["id"]: event for event in scored}
    records = [
        CountedRecord(
            "t",
            0,
            i,
            (f"src:{e['platform'].lower()}",),
            datetime.fromisoformat(e["created_at"]).timestamp(),
            e["label"],
            e["score"],
        )
        for i, e in enumerate(unique.values())
    ]
    return recompute(records)[0]


def assert_counts_equal(actual: dict[tuple[str, int], Counts], expected: dict[tuple[str, int], Counts]) -> None:
    assert set(actual) == set(expected), sorted(set(actual) ^ set(expected))
    for key, want in expected.items():
        got = actual[key]
        labels_got = (got.negative, got.neutral, got.positive)
        labels_want = (want.negative, want.neutral, want.positive)
        assert labels_got == labels_want, (key, got, want)
        # INT8 dynamic quantization scales activations per batch, so a record re-scored after
        # redelivery can differ in the 4th decimal; Redis keeps the delivery it counted.
        assert abs(got.score_sum - want.score_sum) <= 5e-3 * max(1, want.volume), (key, got, want)


__all__ = [
    "assert_counts_equal",
    "drain",
    "http_get",
    "minute_of",
    "oracle_from_scored",
    "produce",
    "redis_counts",
    "same_volumes",
    "settle",
    "wait_for",
]
