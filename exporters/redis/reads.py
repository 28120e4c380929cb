"""The Redis aggregate store's reads: each costs what was asked, never what was ever written.

One aggregate's minutes are its hour hashes (one `HGETALL` per hour); its hours are its day
hashes; a leaderboard is the top of each shard's sorted set (`limit` rows per shard), merged;
a page of entity names is one `ZRANGE ... BYLEX LIMIT`; a name resolves with one `ZSCORE` or
`HGET`; the detector's minute of every entity is one script call per shard (`MINUTE_OF_MANY`).
Nothing here scans the keyspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporters.redis.connection import Client, Script
from stream_app.errors import BadQuery
from stream_app.pipeline.counts import HOUR, Counts, PartitionState, day_of, hour_of, minute_of
from stream_app.pipeline.keys import RedisKeys, entity_of, minute_field, parse_partition_field
from stream_app.pipeline.lookup import fold
from stream_app.pipeline.ports import Leaderboard, PartitionProgress, Ranked
from stream_app.pipeline.windows import leaderboard_windows_message

SCAN_CHUNK = 200
# KEYS: minute hashes of one store shard (one hash tag: one Cluster slot). ARGV[1]: the minute's
# field. One reply per call instead of one per key: redis-py's per-reply cost was most of the
# detector's read of a minute for thousands of entities.
MINUTE_OF_MANY = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGET', key, ARGV[1]) end
return out
"""
MINUTE_OF_MANY_CHUNK = 1000  # keys per script call: bounds how long one call holds Redis


class StoreReads:
    def __init__(self, client: Client, keys: RedisKeys, windows_min: Sequence[int]) -> None:
        self.client = client
        self.keys = keys
        self.windows_min = tuple(windows_min)
        self._minute_of_many = Script(MINUTE_OF_MANY)

    async def minutes(self, key: str, first: int, last: int) -> dict[int, Counts]:
        """Minute buckets of `key` in [first, last] (minute starts); minutes without posts are absent."""
        first, last = minute_of(first), minute_of(last)
        hours = list(range(hour_of(first), hour_of(last) + 1, HOUR))
        async with self.client.pipeline(transaction=False) as reads:
            for hour in hours:
                reads.hgetall(self.keys.minutes(key, hour))
            rows = await reads.execute()
        out: dict[int, Counts] = {}
        for hour, row in zip(hours, rows, strict=True):
            for raw_field, raw in row.items():
                minute = hour + 60 * int(raw_field)
                if first <= minute <= last:
                    out[minute] = Counts.decode(raw)
        return out

    async def hours(self, key: str, first: int, last: int) -> dict[int, Counts]:
        """Hour roll-ups of `key` for the hours starting in [first, last]."""
        first, last = hour_of(first), hour_of(last)
        days = list(range(day_of(first), day_of(last) + 1, 86400))
        async with self.client.pipeline(transaction=False) as reads:
            for day in days:
                reads.hgetall(self.keys.hours(key, day))
            rows = await reads.execute()
        out: dict[int, Counts] = {}
        for day, row in zip(days, rows, strict=True):
            for raw_field, raw in row.items():
                hour = day + HOUR * int(raw_field)
                if first <= hour <= last:
                    out[hour] = Counts.decode(raw)
        return out

    async def minute_of_many(self, keys: Sequence[str], minute: int) -> dict[str, Counts]:
        """One minute of many aggregates (the detector's closed minute), in one pipeline: one
        script call per store shard and chunk of keys (`MINUTE_OF_MANY`)."""
        minute = minute_of(minute)
        hour = hour_of(minute)
        by_shard: dict[int, list[str]] = {}
        for key in keys:
            by_shard.setdefault(self.keys.shard(key), []).append(key)
        chunks: list[tuple[list[str], list[str]]] = []  # (aggregates, their minute hashes)
        for shard, aggregates in sorted(by_shard.items()):
            for start in range(0, len(aggregates), MINUTE_OF_MANY_CHUNK):
                part = aggregates[start : start + MINUTE_OF_MANY_CHUNK]
                chunks.append((part, [self.keys.shard_minutes(shard, aggregate, hour) for aggregate in part]))
        if not chunks:
            return {}
        field = minute_field(minute)  # a chunk's hashes share a slot: one script call each
        rows = await self._minute_of_many.run_each(self.client, [(hashes, [field]) for _, hashes in chunks])
        out: dict[str, Counts] = {}
        for (aggregates, _), row in zip(chunks, rows, strict=True):
            for aggregate, raw in zip(aggregates, row, strict=True):
                if raw:
                    out[aggregate] = Counts.decode(raw)
        return out

    async def leaderboard(self, window_min: int, by: str, limit: int, min_volume: int) -> Leaderboard:
        if window_min not in self.windows_min:
            raise BadQuery(leaderboard_windows_message(self.windows_min, window_min))
        shards = range(self.keys.shards)
        async with self.client.pipeline(transaction=False) as reads:
            for shard in shards:
                reads.hget(self.keys.window_state(shard), str(window_min * 60))
            after = [int(v) for v in await reads.execute() if v is not None]
        rows: list[Ranked] = []
        for shard in shards:
            rows.extend(await self._shard_top(shard, window_min, by, limit, min_volume))
        key = (
            (lambda r: (r.counts.volume, r.counts.negative_share))
            if by == "volume"
            else (lambda r: (round(r.counts.negative_share, 6), r.counts.volume))
        )
        rows.sort(key=lambda r: r.entity)
        rows.sort(key=key, reverse=True)
        return Leaderboard(window_min, min(after) if after else 0, rows[:limit])

    async def _shard_top(self, shard: int, window_min: int, by: str, limit: int, min_volume: int) -> list[Ranked]:
        totals, by_volume, by_share = self.keys.window(shard, window_min)
        if by == "volume":
            members = await self.client.zrevrangebyscore(by_volume, "+inf", max(min_volume, 1), start=0, num=limit)
            return await self._rows(totals, members)
        if min_volume < 10:  # the share ranking starts at TOP_MIN_VOLUME: rank the rest here
            everything = await self.client.hgetall(totals)
            rows = [Ranked(_entity(k), Counts.decode(v)) for k, v in everything.items()]
            return [r for r in rows if r.counts.volume >= max(min_volume, 1)]
        out: list[Ranked] = []
        start = 0
        while len(out) < limit:
            members = await self.client.zrevrange(by_share, start, start + SCAN_CHUNK - 1)
            if not members:
                break
            out.extend(r for r in await self._rows(totals, members) if r.counts.volume >= min_volume)
            start += SCAN_CHUNK
        return out[:limit]

    async def _rows(self, totals: str, members: list[Any]) -> list[Ranked]:
        if not members:
            return []
        values = await self.client.hmget(totals, members)
        return [Ranked(_entity(m), Counts.decode(v)) for m, v in zip(members, values, strict=True) if v]

    async def entities(self, after: str | None, limit: int) -> list[str]:
        """One page of entity names in name order, after `after`."""
        low = f"({after}" if after else "-"
        names = await self.client.zrange(self.keys.names(), low, "+", bylex=True, offset=0, num=limit)
        return [_text(n) for n in names]

    async def find(self, name: str) -> str | None:
        """The stored entity `name` is, exactly or case-insensitively; None when there is none."""
        if await self.client.zscore(self.keys.names(), name) is not None:
            return name
        found = await self.client.hget(self.keys.folds(), fold(name))
        return _text(found) if found is not None else None

    async def near(self, name: str, limit: int) -> list[str]:
        """Up to `limit` stored names whose folded form starts like `name`'s (suggestion candidates)."""
        folded = fold(name)
        stem = folded.lstrip("$@#")[:1] or folded[:1]
        out: list[str] = []
        for lead in ("", "$", "@", "#"):
            low = f"[{lead}{stem}"
            high = f"[{lead}{stem}\xff"
            members = await self.client.zrange(self.keys.folded(), low, high, bylex=True, offset=0, num=limit)
            out.extend(_text(m).split("\x00", 1)[1] for m in members)
        return out

    async def active(self, window_min: int) -> list[str]:
        """Entities with posts in the last `window_min` minutes (a leaderboard window)."""
        async with self.client.pipeline(transaction=False) as reads:
            for shard in range(self.keys.shards):
                reads.hkeys(self.keys.window(shard, window_min)[0])
            rows = await reads.execute()
        return sorted(_entity(member) for row in rows for member in row)

    async def sources(self) -> list[str]:
        return sorted(_text(s) for s in await self.client.smembers(self.keys.sources()))

    async def entity_sources(self, entity: str) -> list[str]:
        return sorted(_text(s) for s in await self.client.smembers(self.keys.entity_sources(entity)))

    async def progress(self) -> list[PartitionProgress]:
        """Per input partition, the most advanced shard's fence (every shard moves on every batch)."""
        async with self.client.pipeline(transaction=False) as reads:
            for shard in range(self.keys.shards):
                reads.hgetall(self.keys.fence(shard))
            rows = await reads.execute()
        best: dict[tuple[str, int], PartitionState] = {}
        for row in rows:
            for raw_field, raw in row.items():
                tp = parse_partition_field(_text(raw_field))
                state = PartitionState.decode(raw)
                if tp not in best or state.offset > best[tp].offset:
                    best[tp] = state
        return [PartitionProgress(t, p, s.offset, s.watermark, s.late, s.updated) for (t, p), s in sorted(best.items())]

    async def close(self) -> None:
        await self.client.aclose()


def _entity(member: Any) -> str:
    """A leaderboard member is its entity's aggregate key (`ent:{escaped entity}`)."""
    entity = entity_of(_text(member))
    if entity is None:
        raise ValueError(f"not an entity aggregate in a leaderboard: {member!r}")
    return entity


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
