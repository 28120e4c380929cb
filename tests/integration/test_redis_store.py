"""The Redis aggregate store against a real redis-server: fences, idempotence, roll-ups,
leaderboards, the entity index, lost writes, and the oracle (streaming equals a batch recomputation)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.redis import reads
from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.connection import connect
from stream_app.engine.types import LABELS
from stream_app.errors import StoreMismatch, StoreRegressed
from stream_app.pipeline.counts import CountedRecord, Counts, hour_of, minute_of, recompute
from stream_app.pipeline.keys import entity_key, record_keys
from stream_app.pipeline.queries import entity_window, find_entity, top_entities, window_counts
from stream_app.testing.snapshot import store_buckets

pytestmark = pytest.mark.integration
NOW = time.time()
BASE = minute_of(NOW) - 3 * 3600  # three hours ago: inside every retention


def make(url: str, prefix: str, **options: object) -> RedisAggregateStore:
    return RedisAggregateStore(connect(url), prefix=prefix, **options)  # type: ignore[arg-type]


@pytest.fixture
async def store(redis_server, request):
    store = make(redis_server.url, f"unit-{request.node.name}-{time.monotonic_ns()}")
    yield store
    await store.close()


def _records(partition: int, offsets: range, minute: int = BASE, entities: tuple[str, ...] = ()) -> list[CountedRecord]:
    return [
        CountedRecord(
            "posts", partition, o, record_keys("x", list(entities)), minute + o % 50, LABELS[o % 3], (o % 5) / 5 - 0.4
        )
        for o in offsets
    ]


async def test_applying_the_same_batch_twice_counts_it_once(store):
    batch = _records(0, range(30))
    assert await store.apply(batch) == 30
    assert await store.apply(batch) == 0
    assert (await store.minutes("src:x", BASE, BASE)) == {BASE: recompute(batch)[0][("src:x", BASE)]}


async def test_partial_replay_after_crash_only_adds_new_offsets(store):
    await store.apply(_records(1, range(0, 20)))
    assert await store.apply(_records(1, range(10, 40))) == 20
    assert (await store.minutes("src:x", BASE, BASE))[BASE].volume == 40


async def test_the_detectors_minute_of_many_reads_every_shard_and_survives_a_script_flush(store, monkeypatch):
    names = [f"E{i}" for i in range(40)]
    records = [
        CountedRecord("posts", 0, o, record_keys("x", [names[o % 40]]), BASE + 60 + o % 7, LABELS[o % 3], 0.0)
        for o in range(400)
    ]
    await store.apply(records)
    buckets = recompute(records)[0]
    expected = {entity_key(n): buckets[(entity_key(n), BASE + 60)] for n in names}
    keys = [entity_key(n) for n in names] + [entity_key("Nobody")]  # no posts: left out, as before
    monkeypatch.setattr(reads, "MINUTE_OF_MANY_CHUNK", 2)  # several script calls per shard
    assert await store.minute_of_many(keys, BASE + 90) == expected
    assert await store.minute_of_many(keys, BASE + 120) == {}
    assert await store.minute_of_many([], BASE + 60) == {}
    await store.client.script_flush()  # a restarted Redis forgot the script: loaded again
    assert await store.minute_of_many(keys, BASE + 60) == expected


async def test_writers_racing_on_one_partition_never_double_count(redis_server, request):
    prefix = f"race-{time.monotonic_ns()}"
    stores = [make(redis_server.url, prefix) for _ in range(4)]  # zombies: each its own view of the fences
    try:
        batch = _records(3, range(50), entities=("Tesla",))
        await asyncio.gather(*(s.apply(batch[: 10 * (i + 2)]) for i, s in enumerate(stores)))
        await stores[0].apply(batch)
        got = await stores[0].minutes(entity_key("Tesla"), BASE, BASE)
        assert got == {BASE: recompute(batch)[0][(entity_key("Tesla"), BASE)]}
    finally:
        for s in stores:
            await s.close()


async def test_minute_buckets_and_hour_rollups_expire_on_their_own_clocks(store):
    await store.apply(_records(4, range(3)))
    hour = hour_of(BASE)
    minute_ttl = await store.client.ttl(store.keys.minutes("src:x", hour))
    hour_ttl = await store.client.ttl(store.keys.hours("src:x", hour - hour % 86400))
    assert 0 < minute_ttl <= hour + 3600 + store.minute_retention_s - NOW + 5
    assert store.minute_retention_s < hour_ttl <= 86400 + store.retention_s


async def test_late_records_are_counted_not_bucketed(redis_server, request):
    store = make(redis_server.url, f"late-{time.monotonic_ns()}", allowed_lateness_s=60)
    try:
        on_time = CountedRecord("posts", 0, 0, ("src:x",), BASE + 600, "negative", -0.9)
        late = CountedRecord("posts", 0, 1, ("src:x",), BASE, "positive", 0.9)
        assert await store.apply([on_time, late]) == 2
        assert await store.minutes("src:x", BASE, BASE) == {}
        assert (await store.minutes("src:x", BASE + 600, BASE + 600))[BASE + 600].negative == 1
        assert [p.late for p in await store.progress()] == [1] and store.late_applied == 1
    finally:
        await store.close()


async def test_a_fence_that_went_back_stops_the_writer_and_the_store_says_where_to_resume(store, redis_server):
    """Redis lost acknowledged writes (an older snapshot, a lagging replica): the fences and the
    counts roll back together, the next write refuses, and the store's own fence is the resume point."""
    await store.apply(_records(5, range(0, 20)))
    before = {k: v for k, v in (await store_buckets(store, BASE, BASE + 60)).items()}
    await store.apply(_records(5, range(20, 40)))
    for shard in range(store.keys.shards):  # what a restore of the state after offset 19 looks like
        await store.client.hset(store.keys.fence(shard), "posts:5", f"19,{float(BASE + 49)!r},0,0.0")
    for (key, minute), counts in before.items():
        await store.client.hset(store.keys.minutes(key, hour_of(minute)), str((minute % 3600) // 60), counts.encode())
    with pytest.raises(StoreRegressed):
        await store.apply(_records(5, range(40, 45)))
    fresh = make(redis_server.url, store.keys.prefix)  # the restarted worker
    try:
        assert await fresh.resume_offsets([("posts", 5)]) == {("posts", 5): 19}
        assert await fresh.apply(_records(5, range(0, 45))) == 25  # the lost records, read again, and new ones
        assert (await fresh.minutes("src:x", BASE, BASE))[BASE].volume == 45
    finally:
        await fresh.close()


async def test_a_store_written_with_another_shard_count_is_refused(store, redis_server):
    await store.apply(_records(6, range(2)))
    other = make(redis_server.url, store.keys.prefix, shards=store.keys.shards * 2)
    try:
        with pytest.raises(StoreMismatch):
            await other.apply(_records(6, range(2, 4)))
    finally:
        await other.close()


async def test_entities_page_resolve_and_suggest_without_scanning(store):
    names = ["Veltro Motors", "$VLTR", "#veltro", "{brace}|src:é", "Nimbus Air"]
    await store.apply(_records(7, range(10), entities=tuple(names)))
    page1 = await store.entities(None, 3)
    page2 = await store.entities(page1[-1], 3)
    assert page1 + page2 == sorted(names)
    assert (await find_entity(store, "veltro motors")).entity == "Veltro Motors"
    assert (await find_entity(store, "vltr")).entity == "$VLTR"
    assert (await find_entity(store, "{BRACE}|src:É")).entity == "{brace}|src:é"
    missing = await find_entity(store, "Veltro Moters")
    assert missing.entity is None and missing.suggestions[0] == "Veltro Motors"
    assert await store.entity_sources("{brace}|src:é") == ["x"]


async def test_leaderboards_equal_the_window_sums_and_roll(store):
    now = minute_of(time.time()) + 30  # the store rolls its windows to its own clock: now
    records = []
    for i, (entity, per_minute) in enumerate([("A", 1), ("B", 3), ("C", 2)]):
        for minute in range(70):  # the last 70 minutes
            for j in range(per_minute):
                offset = len(records)
                label = "negative" if (minute + j + i) % 4 == 0 else "neutral"
                keys = record_keys("x", [entity])
                records.append(CountedRecord("posts", 8, offset, keys, now - 60 * minute, label, 0.0))
    await store.apply(records)
    for window in ("5m", "1h"):
        board = await top_entities(store, "volume", window, 10, 1, now=now)
        assert [r["entity"] for r in board] == ["B", "C", "A"]
        for row in board:
            want = await entity_window(store, row["entity"], window, now=now)
            assert row["volume"] == want["volume"] and row["negative"] == want["negative"], (window, row, want)
    by_share = await top_entities(store, "negative_share", "1h", 10, 10, now=now)
    assert [r["negative_share"] for r in by_share] == sorted((r["negative_share"] for r in by_share), reverse=True)
    # Two minutes later, with no writes: a roll subtracts the minutes that left the 5-minute window.
    later = now + 120
    await store.roll(later)
    rolled = await top_entities(store, "volume", "5m", 10, 1, now=later)
    for row in rolled:
        assert row["volume"] == (await entity_window(store, row["entity"], "5m", now=later))["volume"]


async def test_long_windows_read_hour_rollups_and_equal_the_minutes(store):
    now = minute_of(NOW)
    records = [
        CountedRecord("posts", 9, i, record_keys("x", ["E"]), now - 37 * i, LABELS[i % 3], 0.25) for i in range(1200)
    ]
    await store.apply(records)
    first = now - 1439 * 60
    minutes = await store.minutes(entity_key("E"), first, now)
    total = Counts()
    for counts in minutes.values():
        total = total.merge(counts)
    assert await window_counts(store, entity_key("E"), first, now) == total


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[CountedRecord], list[list[CountedRecord]], float]:
    partitions = draw(st.integers(1, 3))
    per_partition = [
        [
            CountedRecord(
                "t",
                p,
                offset,
                record_keys(
                    draw(st.sampled_from(["x", "reddit"])),
                    draw(st.lists(st.sampled_from(["Tesla", "$AAPL", "{b}|c:é"]), unique=True, max_size=2)),
                ),
                draw(st.floats(BASE - 3600, BASE + 3600, allow_nan=False)),
                draw(st.sampled_from(LABELS)),
                draw(st.floats(-1, 1, allow_nan=False)),
            )
            for offset in range(draw(st.integers(0, 25)))
        ]
        for p in range(partitions)
    ]
    batches: list[list[CountedRecord]] = []
    cursors = [0] * partitions
    while any(c < len(per_partition[p]) for p, c in enumerate(cursors)):
        batch: list[CountedRecord] = []
        for p in range(partitions):
            take = draw(st.integers(0, 8))
            batch.extend(per_partition[p][cursors[p] : cursors[p] + take])
            cursors[p] = min(len(per_partition[p]), cursors[p] + take)
            if draw(st.booleans()) and cursors[p] > 0:
                cursors[p] = max(0, cursors[p] - draw(st.integers(0, 5)))  # redelivery after a crash
        batches.append(batch)
    lateness = draw(st.sampled_from([60.0, 600.0, float("inf")]))
    return [r for part in per_partition for r in part], batches, lateness


@given(streams(), st.sampled_from([1, 4, 16]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_oracle_real_redis_equals_batch_recomputation(redis_server, case, shards):
    records, batches, lateness = case

    async def run() -> tuple[dict[tuple[str, int], Counts], int]:
        store = make(redis_server.url, f"oracle-{time.monotonic_ns()}", shards=shards, allowed_lateness_s=lateness)
        try:
            for batch in batches:
                await store.apply(batch)
            return await store_buckets(store, BASE - 7200, BASE + 7200), sum(p.late for p in await store.progress())
        finally:
            await store.close()

    actual, late = asyncio.run(run())
    expected, want_late = recompute(records, lateness)
    assert late == want_late
    assert actual == {k: v for k, v in expected.items() if v.volume}
