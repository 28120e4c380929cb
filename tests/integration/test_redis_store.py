"""The Redis aggregate store against a real redis-server: idempotence and fencing."""

from __future__ import annotations

import asyncio

import pytest

from exporters.redis_store import RedisAggregateStore, connect
from stream_app.pipeline.counts import CountedRecord, recompute

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(redis_server, request):
    store = RedisAggregateStore(connect(redis_server.url), prefix=f"unit-{request.node.name}")
    yield store
    await store.close()


def _records(partition: int, offsets: range, minute: int = 1_700_000_040) -> list[CountedRecord]:
    labels = ["negative", "neutral", "positive"]
    return [
        CountedRecord("posts", partition, o, ("src:x",), minute + o % 50, labels[o % 3], (o % 5) / 5 - 0.4)
        for o in offsets
    ]


async def test_applying_the_same_batch_twice_counts_it_once(store):
    batch = _records(0, range(30))
    assert await store.apply(batch) == 30
    assert await store.apply(batch) == 0
    want = recompute(batch)[0][("src:x", 1_700_000_040)]
    got = await store.minute_counts("src:x", 1_700_000_040)
    assert (got.negative, got.neutral, got.positive) == (want.negative, want.neutral, want.positive)
    assert got.score_sum == pytest.approx(want.score_sum)


async def test_partial_replay_after_crash_only_adds_new_offsets(store):
    await store.apply(_records(1, range(0, 20)))
    assert await store.apply(_records(1, range(10, 40))) == 20
    got = await store.minute_counts("src:x", 1_700_000_040)
    assert got.volume == 40


async def test_partitions_are_independent_partials_summed_on_read(store):
    await store.apply(_records(0, range(10)) + _records(1, range(5)))
    await store.apply(_records(2, range(7)))
    assert (await store.minute_counts("src:x", 1_700_000_040)).volume == 22
    fields = await store.client.hkeys(store.bucket_key("src:x", 1_700_000_040))
    assert sorted(f.decode() for f in fields) == ["posts:0", "posts:1", "posts:2"]


async def test_concurrent_writers_to_one_partition_never_double_count(store):
    batch = _records(3, range(50))
    results = await asyncio.gather(*(store.apply(batch) for _ in range(5)))
    assert sum(results) == 50
    assert (await store.minute_counts("src:x", 1_700_000_040)).volume == 50


async def test_buckets_expire_after_retention(store):
    await store.apply(_records(4, range(3)))
    ttl = await store.client.ttl(store.bucket_key("src:x", 1_700_000_040))
    assert 0 < ttl <= store.retention_s


async def test_late_records_are_counted_not_bucketed(redis_server, request):
    store = RedisAggregateStore(connect(redis_server.url), prefix=f"late-{request.node.name}", allowed_lateness_s=60)
    try:
        base = 1_700_000_040
        on_time = CountedRecord("posts", 0, 0, ("src:x",), base + 600, "negative", -0.9)
        late = CountedRecord("posts", 0, 1, ("src:x",), base, "positive", 0.9)
        assert await store.apply([on_time, late]) == 2
        assert (await store.minute_counts("src:x", base)).volume == 0
        assert (await store.minute_counts("src:x", base + 600)).negative == 1
        assert await store.late_records() == 1
    finally:
        await store.close()
