"""Read-side queries over the Redis aggregates, shared by the CLI and the worker's HTTP API."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from exporters.redis_store import AggregateStore
from stream_app.pipeline.counts import Counts, minute_of
from stream_app.pipeline.keys import ENTITY, SOURCE, entity_key, entity_of, source_key, source_of
from stream_app.pipeline.lookup import Lookup, resolve
from stream_app.pipeline.windows import parse_window, series, sum_buckets, window_minutes

TOP_BY = ("volume", "negative_share")
# /top and rankings leave out entities with fewer posts than this over the window: one angry
# post is a negative share of 1.0, which says nothing.
TOP_MIN_VOLUME = 10


class KeyIndex(Protocol):
    """The one read `list_entities` needs (the alert detector passes its own counts source)."""

    async def keys(self, prefix: str = "") -> list[str]: ...


async def list_entities(store: KeyIndex) -> list[str]:
    return [e for e in map(entity_of, await store.keys(ENTITY)) if e is not None]


async def find_entity(store: KeyIndex, name: str, aliases: Mapping[str, str] | None = None) -> Lookup:
    """The stored entity `name` means (exact, watch-list alias or case-insensitive), or suggestions."""
    return resolve(name, await list_entities(store), aliases)


async def list_sources(store: KeyIndex) -> list[str]:
    return [s for s in map(source_of, await store.keys(SOURCE)) if s is not None]


async def source_minutes(
    store: AggregateStore, source: str, minutes: int, now: float | None = None
) -> dict[int, Counts]:
    """Per-minute totals of one source over the last `minutes` minutes, the current one included."""
    last = minute_of(now if now is not None else time.time())
    return await store.range_counts(source_key(source), last - 60 * (minutes - 1), last)


async def entity_window(
    store: AggregateStore, entity: str, window: str, source: str | None = None, now: float | None = None
) -> dict[str, Any]:
    minutes = parse_window(window)
    first, last = window_minutes(now if now is not None else time.time(), minutes)
    buckets = await store.range_counts(entity_key(entity, source), first, last)
    return _window_row(entity, source, window, buckets, first, last)


def _window_row(
    entity: str, source: str | None, window: str, buckets: dict[int, Counts], first: int, last: int
) -> dict[str, Any]:
    stats = sum_buckets(buckets, first, last)
    return {"entity": entity, "source": source, "window": window, "from": first, "to": last + 60, **stats.as_dict()}


async def entity_overview(store: AggregateStore, entity: str, window: str, minutes: int, now: float) -> dict[str, Any]:
    """The window's figures and the last `minutes` per minute, from one range read: the same
    answer as `entity_window` plus `entity_series`, at half the Redis round trips (the live page
    asks for it every two seconds)."""
    window_first, last = window_minutes(now, parse_window(window))
    series_first, _ = window_minutes(now, minutes + 1)
    buckets = await store.range_counts(entity_key(entity), min(window_first, series_first), last)
    row = _window_row(entity, None, window, buckets, window_first, last)
    points = series(buckets, series_first, last, 1)
    return {**row, "series": [{"start": start, **stats.as_dict()} for start, stats in points]}


async def entity_series(
    store: AggregateStore,
    entity: str,
    window: str,
    since: float,
    source: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    step = parse_window(window)
    end = now if now is not None else time.time()
    if since >= end:
        raise ValueError("since must be in the past")
    if end - since > 8 * 86400:
        raise ValueError("since reaches further back than the 7-day retention allows")
    first, last = window_minutes(end, max(1, int((end - since) // 60) + 1))
    buckets = await store.range_counts(entity_key(entity, source), first, last)
    points = [{"start": start, **stats.as_dict()} for start, stats in series(buckets, first, last, step)]
    return {"entity": entity, "source": source, "window": window, "points": points}


async def top_entities(
    store: AggregateStore,
    by: str,
    window: str,
    limit: int = 10,
    min_volume: int = TOP_MIN_VOLUME,
    now: float | None = None,
) -> list[dict[str, Any]]:
    if by not in TOP_BY:
        raise ValueError(f"by must be one of {', '.join(TOP_BY)}")
    rows = [await entity_window(store, name, window, now=now) for name in await list_entities(store)]
    rows = [r for r in rows if r["volume"] >= min_volume]
    rows.sort(key=lambda r: (r[by], r["volume"]), reverse=True)
    return rows[:limit]
