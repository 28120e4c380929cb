"""The aggregate store at scale: memory per busy entity-day, and read latency from a separate process.

    PYTHONPATH=. python -m bench.store_scale --entities 10000 --minutes 1440 --partitions 4 --json OUT

Fill: every entity posts every minute on two sources (`x`, `reddit`), one post per source, over
`--partitions` Kafka partitions (an entity's posts on one partition), through the store's own
write path (`RedisAggregateStore.apply`, the worker's batch path), into a fresh redis-server, by
`--writers` processes (2: one per core, as two workers would), each owning its partitions. The
fill goes an hour at a time, a chunk of entities per batch, the way a replay or a rebuild writes;
the allowed lateness is unbounded so the hour-by-hour order is not late.

Memory: `used_memory` after the fill minus before, per entity per day of data. Reads: a real
`sentiment-monitor api` process over that Redis, timed over HTTP from this process; each figure is
the median of `--runs` (3) timed requests after one warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.progress import Progress

from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.connection import connect
from stream_app.engine.types import LABELS
from stream_app.pipeline.counts import CountedRecord, minute_of
from stream_app.pipeline.keys import record_keys
from stream_app.testing.kafka_local import free_port
from stream_app.testing.redis_local import LocalRedis

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("x", "reddit")
TODAY = {  # issue 21's measurements of the layout before this one (10,000 entities: estimated for 24h)
    "memory_mb_per_entity_day": 1.5,
    "top_5m_ms_10000": 3600,
    "top_1h_ms_10000": 22000,
    "top_24h_ms_10000": 480000,
    "entity_any_ms_10000": 100,
}


def entity_name(i: int) -> str:
    return f"brand-{i:05d}" if i % 3 else f"${'ABCDEFGHIJ'[i % 10]}{i:05d}"


@dataclass(frozen=True)
class FillPlan:
    url: str
    prefix: str
    shards: int
    entities: int
    minutes: int
    partitions: int
    chunk: int
    writers: int
    last: int  # the newest minute: the fill ends now


def fill(plan: FillPlan) -> dict[str, float]:
    """`writers` processes, as that many workers would: each owns the partitions p % writers."""
    started = time.monotonic()
    if plan.writers == 1:
        records = fill_partitions(plan, 0, show=True)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(plan.writers) as pool:
            records = sum(pool.starmap(fill_partitions, [(plan, w, w == 0) for w in range(plan.writers)]))
    return {"fill_s": round(time.monotonic() - started, 1), "records": records, "writers": plan.writers}


def fill_partitions(plan: FillPlan, writer: int, show: bool) -> int:
    """Every minute of every entity on this writer's partitions, an hour and `chunk` entities per
    batch, through `RedisAggregateStore.apply`. Returns the records written."""
    names = [entity_name(i) for i in range(plan.entities)]
    partition_of = [zlib.crc32(n.encode()) % plan.partitions for n in names]
    mine = [i for i in range(plan.entities) if partition_of[i] % plan.writers == writer]
    keys = {(names[i], s): record_keys(s, [names[i]]) for i in mine for s in SOURCES}
    offsets = [0] * plan.partitions
    first = plan.last - 60 * (plan.minutes - 1)
    hours = range(first - first % 3600, plan.last + 1, 3600)
    total = 0

    async def run() -> None:
        nonlocal total
        store = RedisAggregateStore(connect(plan.url), prefix=plan.prefix, shards=plan.shards)
        pending: asyncio.Task[int] | None = None
        with Progress(disable=not show) as progress:
            task = progress.add_task("filling", total=len(hours) * ((len(mine) + plan.chunk - 1) // plan.chunk))
            for hour in hours:
                span = [m for m in range(hour, hour + 3600, 60) if first <= m <= plan.last]
                for start in range(0, len(mine), plan.chunk):
                    batch = []
                    for i in mine[start : start + plan.chunk]:
                        p = partition_of[i]
                        for minute in span:
                            for s, source in enumerate(SOURCES):
                                label = LABELS[(i + minute // 60 + s) % 3 if (i + minute) % 7 else 0]
                                record = CountedRecord(
                                    "posts", p, offsets[p], keys[(names[i], source)], minute + 7 * s, label, 0.1
                                )
                                batch.append(record)
                                offsets[p] += 1
                    total += len(batch)
                    if pending is not None:  # batch n+1 was built while Redis ran batch n
                        await pending
                        progress.advance(task)
                    pending = asyncio.create_task(store.apply(batch))
                    await asyncio.sleep(0)
            if pending is not None:
                await pending
                progress.advance(task)
        await store.close()

    asyncio.run(run())
    return total


def used_memory(url: str) -> int:
    async def read() -> int:
        client = connect(url)
        try:
            return int((await client.info("memory"))["used_memory"])
        finally:
            await client.aclose()

    return asyncio.run(read())


def timed_get(url: str, runs: int) -> float:
    """Median milliseconds of `runs` GETs after one warm-up (every answer must be 200)."""

    def once() -> float:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - loopback API
            response.read()
            assert response.status == 200, url
        return (time.perf_counter() - started) * 1000

    once()
    return round(statistics.median(once() for _ in range(runs)), 1)


def reads(env: dict[str, str], entities: int, runs: int, log: Path) -> dict[str, float]:
    """Start `sentiment-monitor api` on the filled store and time each read over HTTP."""
    port = free_port()
    api_env = {**env, "SM_API_PORT": str(port), "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        api = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "api"], env=api_env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2):  # noqa: S310 - loopback API
                    break
            except OSError:
                if time.monotonic() > deadline or api.poll() is not None:
                    raise RuntimeError(f"the API did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        busy = urllib.request.quote(entity_name(entities // 2))
        since = int(time.time()) - 86400 + 120
        middle = urllib.request.quote(entity_name(entities // 2))
        paths = {
            "top_5m": "/top?by=volume&window=5m&limit=10",
            "top_1h": "/top?by=volume&window=1h&limit=10",
            "top_24h": "/top?by=negative_share&window=24h&limit=10",
            "entity_5m": f"/entities/{busy}?window=5m",
            "entity_1h": f"/entities/{busy}?window=1h",
            "entity_24h": f"/entities/{busy}?window=24h",
            "entity_7d": f"/entities/{busy}?window=7d",
            "series_24h_1m": f"/entities/{busy}/series?window=1m&since={since}",
            "entities_page": f"/entities?limit=100&after={middle}",
            "live_page_poll": "/overview?window=5m&minutes=60",
        }
        return {name: timed_get(base + path, runs) for name, path in paths.items()}
    finally:
        api.terminate()
        api.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=250, help="entities per batch (each: an hour of minutes)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2, help="filling processes (workers), each its partitions")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    prefix = "bench"
    with LocalRedis() as redis_server:
        env = {
            **os.environ,
            "SM_REDIS_URL": redis_server.url,
            "SM_REDIS_PREFIX": prefix,
            "SM_REDIS_SHARDS": str(args.shards),
            "SM_ALERTS_ENABLED": "false",
            "SM_WATCHLIST": str(watchlist(args.entities)),
        }
        before = used_memory(redis_server.url)
        plan = FillPlan(
            redis_server.url, prefix, args.shards, args.entities, args.minutes, args.partitions, args.chunk,
            args.writers, minute_of(time.time()),
        )  # fmt: skip
        filled = fill(plan)
        after = used_memory(redis_server.url)
        days = args.minutes / 1440
        result: dict[str, Any] = {
            "entities": args.entities,
            "minutes": args.minutes,
            "partitions": args.partitions,
            "shards": args.shards,
            **filled,
            "used_memory_mb": round((after - before) / 1e6, 1),
            "memory_mb_per_entity_day": round((after - before) / 1e6 / args.entities / days, 4),
            "read_ms": reads(env, args.entities, args.runs, Path(tempfile.gettempdir()) / f"api_{os.getpid()}.log"),
            "today": TODAY,
        }
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


def watchlist(entities: int) -> Path:
    """Eight watch-list entities: what the live page polls."""
    path = Path(tempfile.gettempdir()) / f"store_scale_watch_{os.getpid()}.yaml"
    names = [entity_name(i * max(1, entities // 8)) for i in range(8)]
    path.write_text("entities:\n" + "".join(f"  - name: {orjson.dumps(n).decode()}\n" for n in names))
    return path


if __name__ == "__main__":
    main()
