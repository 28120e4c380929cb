"""BatchProcessor with fakes: routing, dead letters, and counts fenced by offsets."""

from __future__ import annotations

import time

import orjson

from stream_app.pipeline.counts import minute_of
from stream_app.pipeline.process import BatchProcessor, RawRecord
from stream_app.testing.fakes import ListPublisher, MemoryCountsSink, make_processor


def _processor() -> tuple[BatchProcessor, ListPublisher, MemoryCountsSink]:
    publisher, sink = ListPublisher(), MemoryCountsSink()
    processor = make_processor(publisher, sink)
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


async def test_each_record_is_scored_by_its_domains_head_and_says_which() -> None:
    """Reviews -> reviews; a ticker or a `domain: finance` watch-list entity -> finance (a brand
    and a cashtag together: finance); everything else -> social (stream_app/pipeline/routing.py)."""
    from stream_app.pipeline.entities import EntityExtractor, WatchEntity, WatchList
    from stream_app.testing.fakes import KeywordClassifier

    watch = WatchList([WatchEntity("Quanta Bank", ("quanta",), domain="finance"), WatchEntity("Veltro", ("veltro",))])
    classifier = KeywordClassifier()
    publisher = ListPublisher()
    processor = make_processor(
        publisher,
        classifier=classifier,
        extractor=EntityExtractor(watch),
        finance_entities=frozenset({"Quanta Bank"}),
    )
    now = time.monotonic()
    review = orjson.dumps(
        {"id": "r", "text": "good", "rating": 5, "product": "Veltro", "created_at": "2026-03-01T12:00:30Z"}
    )
    batch = [
        RawRecord("posts", 0, 0, _post(0, "veltro is good"), now),
        RawRecord("posts", 0, 1, _post(1, "$TSLA is bad"), now),
        RawRecord("posts", 0, 2, _post(2, "quanta quarterly results"), now),
        RawRecord("posts", 0, 3, _post(3, "veltro and $VLT both good"), now),
        RawRecord("reviews", 0, 0, review, now),
    ]
    scored = await processor.process(batch)
    assert {e.id: e.domain for e in scored} == {
        "p0": "social", "p1": "finance", "p2": "finance", "p3": "finance", "r": "reviews"
    }  # fmt: skip
    assert sorted(classifier.seen_domains) == sorted(e.domain for e in scored)  # each text on its own head
    assert all(e.topic in ("posts", "reviews") and e.offset is not None for e in scored)  # enough to rebuild
