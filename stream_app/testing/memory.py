"""An `AggregateStore` in dicts, with the Redis store's semantics, for tests that need no services.

The write path shares the core's fold (`deltas_by_partition`), so fences, redelivery and lateness
behave as in Redis; hour roll-ups and leaderboards are computed from the minute buckets when
read. `lose_writes_since` drops what was applied after a snapshot, as a Redis that lost
acknowledged writes would.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

from stream_app.errors import BadQuery, StoreRegressed
from stream_app.pipeline.counts import DAY, CountedRecord, Counts, PartitionState, deltas_by_partition, hour_of
from stream_app.pipeline.keys import entity_of, parse_aggregate_key
from stream_app.pipeline.lookup import fold
from stream_app.pipeline.ports import Leaderboard, PartitionProgress, Ranked
from stream_app.pipeline.windows import LEADERBOARD_WINDOWS_MIN, leaderboard_windows_message


class MemoryAggregateStore:
    def __init__(
        self,
        allowed_lateness_s: float = float("inf"),
        retention_s: int = 7 * DAY,
        minute_retention_s: int = 2 * DAY,
        clock: Callable[[], float] = time.time,
        windows_min: Sequence[int] = LEADERBOARD_WINDOWS_MIN,
    ) -> None:
        self.allowed_lateness_s = allowed_lateness_s
        self.retention_s = retention_s
        self.minute_retention_s = minute_retention_s
        self.clock = clock
        self.windows_min = tuple(windows_min)
        self.fences: dict[tuple[str, int], PartitionState] = {}
        self.buckets: dict[tuple[str, int], Counts] = {}
        self.late_applied = 0
        self._seen: dict[tuple[str, int], int] = {}  # what this process last saw, to detect regressions
        self._snapshots: list[tuple[dict[tuple[str, int], PartitionState], dict[tuple[str, int], Counts]]] = []

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[CountedRecord]) -> None:
        await self.apply(batch)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        for tp, seen in self._seen.items():
            if self.fences.get(tp, PartitionState()).offset < seen:
                raise StoreRegressed(f"the fence of {tp} went back from {seen}")
        fresh = 0
        for tp, delta in deltas_by_partition(records, self.fences, self.allowed_lateness_s).items():
            for bucket, added in delta.buckets.items():
                self.buckets[bucket] = self.buckets.get(bucket, Counts()).merge(added)
            self.late_applied += delta.state.late - self.fences.get(tp, PartitionState()).late
            self.fences[tp] = PartitionState(delta.state.offset, delta.state.watermark, delta.state.late, self.clock())
            self._seen[tp] = delta.state.offset
            fresh += delta.records
        return fresh

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: self.fences[tp].offset for tp in partitions if tp in self.fences}

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await self.applied_offsets(partitions)

    async def roll(self, now: float | None = None) -> None:
        return None

    def snapshot(self) -> None:
        self._snapshots.append((copy.deepcopy(self.fences), copy.deepcopy(self.buckets)))

    def lose_writes_since_snapshot(self) -> None:
        self.fences, self.buckets = self._snapshots.pop()

    async def minutes(self, key: str, first: int, last: int) -> dict[int, Counts]:
        return {m: c for (k, m), c in self.buckets.items() if k == key and first <= m <= last}

    async def hours(self, key: str, first: int, last: int) -> dict[int, Counts]:
        out: dict[int, Counts] = {}
        for (k, minute), counts in self.buckets.items():
            if k == key and first <= hour_of(minute) <= last:
                out[hour_of(minute)] = out.get(hour_of(minute), Counts()).merge(counts)
        return out

    async def minute_of_many(self, keys: Sequence[str], minute: int) -> dict[str, Counts]:
        return {k: self.buckets[(k, minute)] for k in keys if (k, minute) in self.buckets}

    async def leaderboard(self, window_min: int, by: str, limit: int, min_volume: int) -> Leaderboard:
        if window_min not in self.windows_min:
            raise BadQuery(leaderboard_windows_message(self.windows_min, window_min))
        now = int(self.clock() // 60) * 60
        after = now - window_min * 60
        totals: dict[str, Counts] = {}
        for (key, minute), counts in self.buckets.items():
            entity = entity_of(key)
            if entity is not None and after < minute <= now:
                totals[entity] = totals.get(entity, Counts()).merge(counts)
        rows = [Ranked(e, c) for e, c in totals.items() if c.volume >= max(min_volume, 1)]
        rows.sort(key=lambda r: r.entity)
        if by == "volume":
            rows.sort(key=lambda r: (r.counts.volume, r.counts.negative_share), reverse=True)
        else:
            rows.sort(key=lambda r: (round(r.counts.negative_share, 6), r.counts.volume), reverse=True)
        return Leaderboard(window_min, after, rows[:limit])

    def _names(self) -> list[str]:
        return sorted({e for (k, _) in self.buckets for e in [entity_of(k)] if e is not None})

    async def entities(self, after: str | None, limit: int) -> list[str]:
        return [n for n in self._names() if after is None or n > after][:limit]

    async def find(self, name: str) -> str | None:
        names = self._names()
        if name in names:
            return name
        return next((n for n in names if fold(n) == fold(name)), None)

    async def near(self, name: str, limit: int) -> list[str]:
        stem = fold(name).lstrip("$@#")[:1]
        return [n for n in self._names() if fold(n).lstrip("$@#")[:1] == stem][:limit]

    async def active(self, window_min: int) -> list[str]:
        return [r.entity for r in (await self.leaderboard(window_min, "volume", 10**9, 1)).rows]

    async def sources(self) -> list[str]:
        return sorted({s for (k, _) in self.buckets for e, s in [parse_aggregate_key(k)] if s and e is None})

    async def entity_sources(self, entity: str) -> list[str]:
        return sorted({s for (k, _) in self.buckets for e, s in [parse_aggregate_key(k)] if s and e == entity})

    async def progress(self) -> list[PartitionProgress]:
        return [PartitionProgress(t, p, s.offset, s.watermark, s.late, s.updated) for (t, p), s in self.fences.items()]

    def totals(self) -> dict[tuple[str, int], Counts]:
        return dict(self.buckets)

    def late(self) -> int:
        return sum(state.late for state in self.fences.values())

    async def close(self) -> None:
        return None
