"""BatchProcessor with fakes: routing, dead letters, and counts fenced by offsets."""

from __future__ import annotations

import time

import orjson

from stream_app.pipeline.counts import minute_of
from stream_app.pipeline.process import BatchProcessor, RawRecord
from stream_app.testing.fakes import KeywordClassifier, ListPublisher, MemoryCountsSink


def _processor() -> tuple[BatchProcessor, ListPublisher, MemoryCountsSink]:
    publisher, sink = ListPublisher(), MemoryCountsSink()
    processor = BatchProcessor(
        KeywordClassifier(), publisher, sink, {"posts": "post", "reviews": "review"}, "fake", "0"
    )
    return processor, publisher, sink


def _post(i: int, text: str, ts: str = "2026-03-01T12:00:30Z") -> bytes:
    return orjson.dumps({"id": f"p{i}", "text": text, "created_at": ts, "platform": "X"})


async def test_valid_records_are_scored_and_counted_invalid_ones_dead_lettered():
    processor, publisher, sink = _processor()
    now = time.monotonic()
    batch = [
        RawRecord("posts", 0, 0, _post(0, "good stuff"), now),
        RawRecord("posts", 0, 1, b"{broken", now),
        RawRecord("posts", 1, 0, _post(1, "bad stuff"), now),
        RawRecord("unknown-topic", 0, 0, _post(2, "good"), now),
    ]
    scored = await processor.process(batch)
    assert [e.id for e in scored] == ["p0", "p1"]
    assert [e.label for e in scored] == ["positive", "negative"]
    assert sorted(d.reason for d in publisher.dead) == ["invalid_value", "malformed_json"]
    totals = sink.totals()
    minute = minute_of(scored[0].created_at.timestamp())
    assert (totals[("src:x", minute)].positive, totals[("src:x", minute)].negative) == (1, 1)


async def test_redelivered_batch_is_not_counted_twice():
    processor, _, sink = _processor()
    now = time.monotonic()
    batch = [RawRecord("posts", 0, i, _post(i, "bad"), now) for i in range(5)]
    await processor.process(batch)
    await processor.process(batch[2:])  # as after a crash before the commit
    minute = minute_of(1772366430)
    assert sink.totals()[("src:x", minute)].negative == 5
