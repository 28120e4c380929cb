"""The alert detector at scale: the worker time to step every entity through one closed minute.

    PYTHONPATH=. python -m bench.detector_scale --entities 10000 --history 120 --json OUT

Fills a fresh redis-server through the store's write path (`--history` minutes of every entity
posting on two sources), lets the detector catch up once (the warm-up a new leader pays: every
entity's history replayed), then, `--minutes` times, writes one more minute for every entity and
times the tick that steps them through it: wall and CPU time (the event loop's thread), the
states saved and their bytes. The detector runs in this process, as it does in a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from bench.store_scale import SOURCES, entity_name
from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.alert_state import RedisAlertState, RedisPostSamples
from exporters.redis.connection import connect
from schemas.models import Alert
from stream_app.alerting.detector import DetectorParams
from stream_app.alerting.service import AlertService
from stream_app.engine.types import LABELS
from stream_app.pipeline.counts import CountedRecord, minute_of
from stream_app.pipeline.keys import record_keys
from stream_app.testing.redis_local import LocalRedis


class CountingState(RedisAlertState):
    """The Redis alert state, counting what each save writes."""

    saved: list[tuple[int, int]]

    async def save(self, states: Any, alerts: Any) -> bool:
        self.saved.append((len(states), sum(len(s) for s in states.values())))
        return await super().save(states, alerts)


class Sent:
    async def publish(self, alert: Alert) -> None:
        return None

    def submit(self, alert: Alert, only: str | None = None) -> None:
        return None


def minute_records(names: list[str], minute: int, offsets: list[int], partitions: int) -> list[CountedRecord]:
    out = []
    for i, name in enumerate(names):
        p = zlib.crc32(name.encode()) % partitions
        for s, source in enumerate(SOURCES):
            label = LABELS[(i + minute // 60 + s) % 3 if (i + minute) % 5 else 0]
            out.append(CountedRecord("posts", p, offsets[p], record_keys(source, [name]), minute + 5 + s, label, 0.0))
            offsets[p] += 1
    return out


async def run(url: str, entities: int, history: int, minutes: int, partitions: int) -> dict[str, Any]:
    names = [entity_name(i) for i in range(entities)]
    client = connect(url)
    store = RedisAggregateStore(client, prefix="det")
    state = CountingState(client, store.keys, leader_ttl_s=60)
    state.saved = []
    service = AlertService(
        counts=store,
        state=state,
        posts=RedisPostSamples(client, store.keys, 86400),
        publisher=Sent(),
        sinks=Sent(),
        params=DetectorParams(),
        settle_s=0,
        idle_s=3600,
        history_min=1440,
    )
    offsets = [0] * partitions
    last = minute_of(time.time()) - 60 * (minutes + 2)
    for minute in range(last - 60 * (history - 1), last + 60, 60):
        await store.apply(minute_records(names, minute, offsets, partitions))
    await store.apply(minute_records(names, last + 60, offsets, partitions))  # moves the watermark past `last`
    started, cpu = time.monotonic(), time.process_time()
    await service.tick()
    warmup = {"wall_s": round(time.monotonic() - started, 1), "cpu_s": round(time.process_time() - cpu, 1)}
    ticks = []
    for step in range(minutes):
        state.saved.clear()
        await store.apply(minute_records(names, last + 60 * (step + 2), offsets, partitions))
        started, cpu = time.monotonic(), time.process_time()
        await service.tick()
        saved = sum(n for n, _ in state.saved), sum(b for _, b in state.saved)
        ticks.append(
            {"wall_s": time.monotonic() - started, "cpu_s": time.process_time() - cpu, "states_saved": saved[0],
             "bytes_saved": saved[1]}
        )  # fmt: skip
    await client.aclose()
    return {
        "entities": entities,
        "history_min": history,
        "warmup": warmup,
        "minute_wall_s_median": round(statistics.median(t["wall_s"] for t in ticks), 3),
        "minute_cpu_s_median": round(statistics.median(t["cpu_s"] for t in ticks), 3),
        "states_saved_median": statistics.median(t["states_saved"] for t in ticks),
        "bytes_saved_median": statistics.median(t["bytes_saved"] for t in ticks),
        "ticks": [{k: round(v, 3) if isinstance(v, float) else v for k, v in t.items()} for t in ticks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=120, help="minutes of data before the timed minutes")
    parser.add_argument("--minutes", type=int, default=5, help="timed minutes")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with LocalRedis() as redis_server:
        result = asyncio.run(run(redis_server.url, args.entities, args.history, args.minutes, args.partitions))
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
