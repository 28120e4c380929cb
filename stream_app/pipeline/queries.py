"""Read-side queries over any `AggregateStore`, shared by the API process, the CLI and the gauges.

A window is summed from the coarsest buckets that fit it: hour roll-ups for the whole hours
inside it, minute buckets for the partial hours at its edges. So a 24-hour window costs about
two day hashes and two hour hashes, not 1,440 minute reads. Minute buckets are kept for the
minute retention (48 h by default) and hour roll-ups for the retention (7 days): a window that
reaches past the minute retention starts on the hour, and says so in `from`.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from typing import Any

from stream_app.errors import BadQuery
from stream_app.pipeline.counts import HOUR, MINUTE, Counts, hour_of, minute_of
from stream_app.pipeline.keys import entity_key, source_key
from stream_app.pipeline.lookup import Lookup, fold
from stream_app.pipeline.ports import AggregateStore
from stream_app.pipeline.windows import TOP_MIN_VOLUME, parse_window, series, window_minutes

TOP_BY = ("volume", "negative_share")
SUGGESTIONS = 5


def split_span(first: int, last: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """Minute ranges (first, last) at the edges and the whole hours (first, last) in between that
    together cover the minutes [first, last] once each."""
    whole_first = first if first % HOUR == 0 else hour_of(first) + HOUR
    whole_last = last - HOUR + MINUTE if (last + MINUTE) % HOUR == 0 else hour_of(last) - HOUR
    if whole_first > whole_last:
        return [(first, last)], None
    edges = []
    if first < whole_first:
        edges.append((first, whole_first - MINUTE))
    if last > whole_last + HOUR - MINUTE:
        edges.append((whole_last + HOUR, last))
    return edges, (whole_first, whole_last)


def clamp_to_retention(store: AggregateStore, first: int, now: float) -> int:
    """The window's first minute, on the hour when its start has left the minute retention."""
    if now - first > store.retention_s + HOUR:
        raise BadQuery(f"the window reaches back further than the retention ({store.retention_s // 86400} days)")
    if now - first > store.minute_retention_s - HOUR:
        return hour_of(first)
    return first


async def window_counts(store: AggregateStore, key: str, first: int, last: int) -> Counts:
    """Totals of `key` over the minutes [first, last]."""
    edges, whole = split_span(first, last)
    total = Counts()
    for low, high in edges:
        for counts in (await store.minutes(key, low, high)).values():
            total = total.merge(counts)
    if whole is not None:
        for counts in (await store.hours(key, whole[0], whole[1])).values():
            total = total.merge(counts)
    return total


def _row(entity: str, source: str | None, window: str, counts: Counts, first: int, last: int) -> dict[str, Any]:
    span = {"from": first, "to": last + MINUTE}
    return {"entity": entity, "source": source, "window": window, **span, **counts.as_dict()}


async def entity_window(
    store: AggregateStore, entity: str, window: str, source: str | None = None, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    first, last = window_minutes(now, parse_window(window))
    first = clamp_to_retention(store, first, now)
    counts = await window_counts(store, entity_key(entity, source), first, last)
    return _row(entity, source, window, counts, first, last)


async def entity_overview(store: AggregateStore, entity: str, window: str, minutes: int, now: float) -> dict[str, Any]:
    """The window's figures and the last `minutes` per minute (what the live page draws)."""
    row = await entity_window(store, entity, window, now=now)
    first, last = window_minutes(now, minutes + 1)
    buckets = await store.minutes(entity_key(entity), max(first, minute_of(now - store.minute_retention_s)), last)
    points = series(buckets, first, last, 1)
    return {**row, "series": [{"start": start, **stats.as_dict()} for start, stats in points]}


async def entity_series(
    store: AggregateStore,
    entity: str,
    window: str,
    since: float,
    source: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Consecutive `window`-sized steps from `since` to now. Steps of whole hours read hour
    roll-ups (and start on the hour); finer steps need the minutes, kept for the minute retention."""
    step = parse_window(window)
    end = time.time() if now is None else now
    if since >= end:
        raise BadQuery("since must be in the past")
    first, last = window_minutes(end, max(1, int((end - since) // MINUTE) + 1))
    key = entity_key(entity, source)
    if step % 60 == 0 and (step > 60 or end - first > store.minute_retention_s - HOUR):
        first = clamp_to_retention(store, hour_of(first), end)
        hours = await store.hours(key, first, last)
        points = series(hours, first, last, step)
    else:
        if end - first > store.minute_retention_s - HOUR:
            raise BadQuery(
                f"minute steps are kept for {store.minute_retention_s // 3600} hours; "
                "use a later since, or a window of whole hours (e.g. 1h)"
            )
        points = series(await store.minutes(key, first, last), first, last, step)
    out = [{"start": start, **stats.as_dict()} for start, stats in points]
    return {"entity": entity, "source": source, "window": window, "points": out}


async def top_entities(
    store: AggregateStore,
    by: str,
    window: str,
    limit: int = 10,
    min_volume: int = TOP_MIN_VOLUME,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """The leaderboard of `window`, from the store's sorted sets: no scan of the entities."""
    if by not in TOP_BY:
        raise BadQuery(f"by must be one of {', '.join(TOP_BY)}")
    now = time.time() if now is None else now
    board = await store.leaderboard(parse_window(window), by, limit, min_volume)
    last = minute_of(now)
    first = board.after + MINUTE if board.after else window_minutes(now, board.window_min)[0]
    return [_row(r.entity, None, window, r.counts, first, last) for r in board.rows]


async def find_entity(store: AggregateStore, name: str, aliases: Mapping[str, str] | None = None) -> Lookup:
    """The stored entity `name` means (exact, watch-list alias, or case-insensitive), or up to
    five close names: one or two lookups, and a bounded candidate list for the suggestions."""
    found = await store.find(name)
    if found is not None and found == name:
        return Lookup(name, found)
    folded = fold(name)
    if aliases and folded in aliases:
        return Lookup(name, aliases[folded])
    if found is None and folded[:1] not in "$@#":
        for lead in "$@#":
            found = found or await store.find(lead + name)
    if found is not None:
        return Lookup(name, found)
    candidates = {fold(c): c for c in await store.near(name, 200)}
    choices = {**(aliases or {}), **candidates}
    close = difflib.get_close_matches(folded, list(choices), n=SUGGESTIONS * 2, cutoff=0.6)
    return Lookup(name, None, list(dict.fromkeys(choices[c] for c in close))[:SUGGESTIONS])


async def source_minutes(
    store: AggregateStore, source: str, minutes: int, now: float | None = None
) -> dict[int, Counts]:
    """Per-minute totals of one source over the last `minutes` minutes, the current one included."""
    last = minute_of(now if now is not None else time.time())
    first = last - MINUTE * (minutes - 1)
    return await store.minutes(source_key(source), first, last)
