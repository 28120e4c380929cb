"""Entity aggregates on real Kafka, real workers, the real model and real Redis, through a
kill -9, a restart and a second worker; then Redis, the API process and a rebuild from the
scored-events topic equal a recomputation."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from stream_app.pipeline.counts import CountedRecord, recompute
from stream_app.pipeline.entities import WatchList
from stream_app.pipeline.keys import record_keys
from stream_app.testing.generate import generate_stream
from stream_app.testing.snapshot import store_buckets
from stream_app.wiring import create_topics, rebuild_aggregates, redis_store
from tests.support.stack import settings_from
from tests.support.streamkit import drain, http_get, produce, same_volumes, settle

pytestmark = pytest.mark.integration
WATCHLIST = Path(__file__).resolve().parents[2] / "deploy" / "watchlist" / "demo.yaml"


def _get(port: str, path: str) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{port}{path}")
    return status, json.loads(body)


def test_entity_windows_stay_exact_through_crash_restart_and_scale_out(stack_env, worker_factory, api_factory):
    env = {**stack_env, "SM_WATCHLIST": str(WATCHLIST)}
    settings = settings_from(env)
    watch = WatchList.load(WATCHLIST).names()
    create_topics(settings)
    feed = list(generate_stream(minutes=6, per_minute=100, seed=41))
    posts = [r for k, r in feed if k == "post"]
    reviews = [r for k, r in feed if k == "review"]

    first = worker_factory(SM_WATCHLIST=str(WATCHLIST))
    first.wait_ready()
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(p) for p in posts])
    produce(settings.kafka_bootstrap, settings.topic_reviews, [orjson.dumps(r) for r in reviews])
    drain(settings.kafka_bootstrap, settings.topic_scored, len(feed) // 4, timeout=120, settle=0)
    first.kill9()
    second = worker_factory(SM_WATCHLIST=str(WATCHLIST))
    second.wait_ready()
    third = worker_factory(SM_WATCHLIST=str(WATCHLIST))
    third.wait_ready()
    scored = drain(settings.kafka_bootstrap, settings.topic_scored, len(feed), timeout=300)
    unique = {e["id"]: e for e in scored}
    assert set(unique) == {r["id"] for _, r in feed}

    # Oracle: recompute watch-list entity buckets from the enriched events, one per id.
    assert all(set(e["counted"]) >= {x for x in e["entities"] if x in watch} for e in unique.values())
    records = [
        CountedRecord(
            e["topic"],
            e["partition"],
            e["offset"],
            record_keys(e["platform"].lower(), [x for x in e["entities"] if x in watch]),
            datetime.fromisoformat(e["created_at"]).timestamp(),
            e["label"],
            e["score"],
        )
        for e in unique.values()
    ]
    expected, late = recompute(records)
    assert late == 0
    expected = {k: v for k, v in expected.items() if k[0].startswith("ent:")}
    assert {k[0] for k in expected} >= {f"ent:{name}" for name in watch}

    minutes = sorted({m for _, m in expected})
    wanted = {k for k, _ in expected}

    def read(prefix: str) -> dict:
        async def run() -> dict:
            store = redis_store(settings_from({**env, "SM_REDIS_PREFIX": prefix}))
            try:
                found = await store_buckets(store, minutes[0], minutes[-1])
                return {k: v for k, v in found.items() if k[0] in wanted}  # watch-list entities
            finally:
                await store.close()

        return asyncio.run(run())

    actual = settle(lambda: read(settings.redis_prefix), lambda a: same_volumes(a, expected))
    _assert_equal(actual, expected)

    # The same from the topic alone: `aggregates rebuild` into an empty prefix equals the oracle.
    fresh = settings_from({**env, "SM_REDIS_PREFIX": settings.redis_prefix + "-rebuilt"})
    read_back, applied = asyncio.run(rebuild_aggregates(fresh))
    assert read_back >= applied == len(unique)  # a kill -9 can publish an event twice; it counts once
    _assert_equal(read(fresh.redis_prefix), expected)

    api = api_factory(SM_WATCHLIST=str(WATCHLIST))
    api.wait_ready()
    port = api.env["SM_API_PORT"]
    status, body = _get(port, "/entities")
    assert status == 200 and watch <= set(body["entities"])
    for name in watch:
        want_volume = sum(v.volume for (k, _), v in expected.items() if k == f"ent:{name}")
        want_negative = sum(v.negative for (k, _), v in expected.items() if k == f"ent:{name}")
        status, view = _get(port, f"/entities/{urllib.request.quote(name)}?window=24h")
        assert status == 200
        assert (view["volume"], view["negative"]) == (want_volume, want_negative)
        assert view["negative_share"] == pytest.approx(want_negative / want_volume)
        for source in ("x", "reddit", "mastodon", "reviews"):
            status, by_source = _get(port, f"/entities/{urllib.request.quote(name)}?window=24h&source={source}")
            want = sum(v.volume for (k, _), v in expected.items() if k == f"ent:{name}|src:{source}")
            assert status == 200 and by_source["volume"] == want
        since = int(time.time()) - 3 * 3600
        status, series = _get(port, f"/entities/{urllib.request.quote(name)}/series?window=1m&since={since}")
        assert status == 200 and sum(p["volume"] for p in series["points"]) == want_volume

    with urllib.request.urlopen(f"{third.url}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    for name in watch:  # the feed spans the last few minutes, so the 1h window holds all of it
        want_volume = sum(v.volume for (k, _), v in expected.items() if k == f"ent:{name}")
        assert f'sm_entity_volume{{entity="{name}",window="1h"}} {float(want_volume)}' in exposition

    status, top = _get(port, "/top?by=volume&window=24h&limit=3")
    assert status == 200 and len(top["entities"]) == 3
    volumes = [row["volume"] for row in top["entities"]]
    assert volumes == sorted(volumes, reverse=True)
    for bad in (
        "/top?by=nonsense",
        "/entities/Veltro%20Motors?window=5x",
        "/top?limit=0",
        "/entities/Veltro%20Motors/series?window=1m",
    ):
        status, body = _get(port, bad)
        assert status == 400 and body["error"], bad
    for worker in (second, third):
        assert worker.alive(), worker.log_tail()


def _assert_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        assert (got.negative, got.neutral, got.positive) == (want.negative, want.neutral, want.positive), key
        assert abs(got.score_sum - want.score_sum) <= 5e-3 * want.volume, key
