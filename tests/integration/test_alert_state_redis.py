"""The detector's leadership lease, fenced state writes and outbox on a real redis-server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson

from exporters.redis.alert_state import RedisAlertState, RedisPostSamples
from exporters.redis.connection import connect
from schemas.models import Alert, AlertStatistic, ShareAndVolume
from stream_app.pipeline.keys import RedisKeys
from stream_app.pipeline.samples import PostSample


def alert(status: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id="a1",
        entity="Quanta Bank",
        status=status,  # type: ignore[arg-type]
        severity="warning",
        window_s=300,
        starts_at=now,
        ends_at=now if status == "resolved" else None,
        evaluated_at=now,
        current=ShareAndVolume(negative_share=0.5, volume=40),
        baseline=ShareAndVolume(negative_share=0.2, volume=40),
        statistic=AlertStatistic(cusum_llr=9.0, threshold=7.0, wilson_lower=0.35, z=4.0),
        summary="s",
    )


async def scenario(url: str) -> None:
    keys = RedisKeys(f"lease{time.monotonic_ns()}")
    one = RedisAlertState(connect(url), keys, leader_ttl_s=1.0)
    two = RedisAlertState(connect(url), keys, leader_ttl_s=1.0)
    assert await one.lead() and not await two.lead()
    assert await one.lead()  # renewing keeps it
    assert await one.save({"Quanta Bank": orjson.dumps({"last_minute": 60})}, [alert("firing")])
    assert not await two.save({"Quanta Bank": orjson.dumps({"last_minute": 999})}, [])  # a follower cannot write
    assert (await two.load(["Quanta Bank", "Nobody"])) == {"Quanta Bank": {"last_minute": 60}}
    assert [a.status for a in await two.outbox()] == ["firing"]
    assert [a.entity for a in await two.active()] == ["Quanta Bank"]

    await asyncio.sleep(1.3)  # the leader stalls past its lease: the other worker takes over
    assert await two.lead() and not await one.lead()
    assert not await one.save({"Quanta Bank": orjson.dumps({"last_minute": 0})}, [])  # the old leader is fenced off
    await two.published(alert("firing"))
    assert await two.save({"Quanta Bank": orjson.dumps({"last_minute": 120})}, [alert("resolved")])
    assert [a.status for a in await two.outbox()] == ["resolved"]
    await two.client.script_flush()  # a restarted Redis forgot the script: the save loads it again
    assert await two.save({"Quanta Bank": orjson.dumps({"last_minute": 180})}, [])
    assert (await one.load(["Quanta Bank"])) == {"Quanta Bank": {"last_minute": 180}}
    assert await two.active() == [] and [a.status for a in await two.recent()] == ["resolved", "firing"]

    samples = RedisPostSamples(connect(url), keys, retention_s=60, per_entity=3)
    posts = [("Quanta Bank", PostSample(f"p{i}", 100.0 + i, "negative", -0.5, "x", f"text {i}")) for i in range(5)]
    await samples.add(posts)
    await samples.add(posts)  # redelivered: same members, nothing doubles
    assert [p.id for p in await samples.recent("Quanta Bank", until=1e12)] == ["p2", "p3", "p4"]
    assert [p.id for p in await samples.recent("Quanta Bank", until=104.0)] == ["p2", "p3"]


def test_lease_fencing_outbox_and_samples(redis_server) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(scenario(redis_server.url))
