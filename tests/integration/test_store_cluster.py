"""The aggregate store and the alert state on a real Redis Cluster (3 masters, a replica each):
the oracle, awkward entity names, a failover that loses acknowledged writes, and the detector's
lease and fenced save in one slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.alert_state import RedisAlertState
from exporters.redis.connection import connect
from stream_app.engine.types import LABELS
from stream_app.errors import StoreRegressed
from stream_app.pipeline.counts import CountedRecord, minute_of, recompute
from stream_app.pipeline.keys import entity_key, record_keys
from stream_app.pipeline.queries import find_entity
from stream_app.testing.redis_cluster import LocalRedisCluster
from stream_app.testing.snapshot import store_buckets

pytestmark = pytest.mark.integration
BASE = minute_of(time.time()) - 3600
NAMES = ["Veltro Motors", "{brace}", "a|src:b", "x:y", "Café Ünïcode", "$VLTR", "東京"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with LocalRedisCluster(appendfsync="everysec") as started:
        yield started


@pytest.fixture
async def store(cluster: LocalRedisCluster) -> AsyncIterator[RedisAggregateStore]:
    cluster.heal()
    store = RedisAggregateStore(connect("redis+cluster://" + cluster.url.split("://", 1)[1]), prefix=_prefix())
    yield store
    await store.close()


def _prefix() -> str:
    return f"c{time.monotonic_ns()}"


def _records(offsets: range, partition: int = 0) -> list[CountedRecord]:
    return [
        CountedRecord(
            "posts",
            partition,
            o,
            record_keys(["x", "reddit"][o % 2], [NAMES[o % len(NAMES)], NAMES[(o * 3) % len(NAMES)]]),
            BASE + (o * 7) % 1800,
            LABELS[o % 3],
            ((o % 11) - 5) / 5,
        )
        for o in offsets
    ]


async def test_the_oracle_holds_on_a_cluster_with_every_kind_of_name(store: RedisAggregateStore) -> None:
    records = _records(range(300)) + _records(range(200), partition=1)
    for start in range(0, 300, 40):
        await store.apply([r for r in records if start <= r.offset < start + 40])
        await store.apply([r for r in records if start <= r.offset < start + 10])  # redelivery
    actual = await store_buckets(store, BASE - 60, BASE + 1860)
    assert actual == {k: v for k, v in recompute(records)[0].items() if v.volume}
    assert sorted(await store.entities(None, 100)) == sorted(set(NAMES))
    for name in NAMES:
        assert (await find_entity(store, name.upper() if name.isascii() else name)).entity == name
    board = await store.leaderboard(60, "volume", 3, 1)
    assert len(board.rows) == 3 and board.rows[0].counts.volume >= board.rows[-1].counts.volume


async def test_the_detectors_minute_of_many_reads_every_slot(store: RedisAggregateStore) -> None:
    records = _records(range(300))
    await store.apply(records)
    buckets = recompute(records)[0]
    keys = [entity_key(name) for name in NAMES]
    for minute in (BASE, BASE + 7 * 60):
        expected = {k: buckets[(k, minute)] for k in keys if (k, minute) in buckets}
        assert expected and await store.minute_of_many(keys, minute) == expected


async def test_a_failover_that_loses_writes_is_detected_and_the_store_says_where_to_resume(
    cluster: LocalRedisCluster, store: RedisAggregateStore
) -> None:
    await store.apply(_records(range(0, 40)))
    victim = cluster.master_for_key(store.keys.fence(0))
    loop = asyncio.get_running_loop()

    def acknowledged_then_lost() -> None:  # the master acknowledges these; its replica never sees them
        asyncio.run_coroutine_threadsafe(store.apply(_records(range(40, 80))), loop).result(30)

    await asyncio.to_thread(cluster.fail_over_losing_writes, victim, acknowledged_then_lost)
    with pytest.raises(StoreRegressed):
        for _ in range(20):  # the first tries may still meet the failover's connection errors
            try:
                await store.apply(_records(range(80, 90)))
            except (RedisConnectionError, ClusterDownError, RedisTimeoutError):  # the worker retries these
                await asyncio.sleep(0.5)
    restarted = RedisAggregateStore(store.client.__class__.from_url(cluster.url), prefix=store.keys.prefix)
    try:
        assert await restarted.resume_offsets([("posts", 0)]) == {("posts", 0): 39}
        everything = _records(range(0, 100))
        await restarted.apply([r for r in everything if r.offset >= 40])
        actual = await store_buckets(restarted, BASE - 60, BASE + 1860)
        assert actual == {k: v for k, v in recompute(everything)[0].items() if v.volume}
    finally:
        await restarted.close()


async def test_the_detector_lease_and_its_fenced_save_work_in_one_slot(cluster: LocalRedisCluster) -> None:
    client = connect("redis+cluster://" + cluster.url.split("://", 1)[1])
    store = RedisAggregateStore(client, prefix=_prefix())
    first = RedisAlertState(client, store.keys, leader_ttl_s=5)
    second = RedisAlertState(client, store.keys, leader_ttl_s=5)
    try:
        assert await first.lead() and not await second.lead()
        assert await first.save({"E": orjson.dumps({"last_minute": 60})}, [])
        assert await first.load(["E", "F"]) == {"E": {"last_minute": 60}}
        await client.delete(first.lock.name)  # the lease expired; the other worker takes it
        assert await second.lead()
        assert not await first.save({"E": orjson.dumps({"last_minute": 120})}, [])  # a former leader writes nothing
        assert (await second.load(["E"]))["E"]["last_minute"] == 60
    finally:
        await client.aclose()
