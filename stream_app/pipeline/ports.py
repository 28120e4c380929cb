"""The interfaces the core owns. Adapters (exporters/) implement them; the core never imports adapters.

One store protocol, `AggregateStore`, serves the batch processor (writes and fences), the alert
detector (one minute for many aggregates, the active entities, the partitions' progress) and the
queries (`stream_app.pipeline.queries`). One sink shape, `Sink`, serves every output: scored
events and dead letters, aggregates, post samples and alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from stream_app.pipeline.counts import CountedRecord, Counts

Item = TypeVar("Item", contravariant=True)
TopBy = str  # "volume" or "negative_share" (stream_app.pipeline.queries.TOP_BY)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One leaderboard row: an entity and its totals over the window."""

    entity: str
    counts: Counts


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """The top entities of one window, and the span it covers: minutes after `after` (epoch s of
    the newest minute no longer in it) up to now. A store whose roll lags says so through `after`."""

    window_min: int
    after: int
    rows: list[Ranked]


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far the store has applied one input partition: its last offset, its event-time
    watermark, how many records were late, and (wall clock) when it last moved."""

    topic: str
    partition: int
    offset: int
    watermark: float
    late: int
    updated: float


class Sink(Protocol, Generic[Item]):
    """Every output has this one shape (quix-streams' BaseSink, bytewax's write_batch/close):
    `start` once the event loop runs, `write` a batch (returns once the output has it, or raises),
    `flush` whatever it buffers, `stop` at shutdown. `Wiring` starts and stops them in order."""

    async def start(self) -> None: ...

    async def write(self, batch: Sequence[Item]) -> None: ...

    async def flush(self) -> None: ...

    async def stop(self) -> None: ...


class AggregateWrites(Sink[CountedRecord], Protocol):
    """The store's write side, what the batch processor needs: `write` counts a batch exactly
    once, fenced by each partition's applied offset (`apply` does the same and says how many
    records were new); `applied_offsets` is what the store already holds (the processor skips
    those records); `resume_offsets` is the store's own truth, read afresh, that a consumer
    resumes from."""

    async def apply(self, records: Sequence[CountedRecord]) -> int: ...

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...


class AggregateStore(AggregateWrites, Protocol):
    """The one store protocol: minute buckets and hour roll-ups per aggregate key, leaderboards,
    an entity index, and the per-partition offset fences that keep every count exact. The
    processor uses its write side (`AggregateWrites`); the detector and the queries read.
    Reads cost what is asked: one aggregate's buckets, one page of names, the top of one window."""

    minute_retention_s: int
    retention_s: int

    async def roll(self, now: float | None = None) -> None: ...

    async def minutes(self, key: str, first: int, last: int) -> dict[int, Counts]: ...

    async def hours(self, key: str, first: int, last: int) -> dict[int, Counts]: ...

    async def minute_of_many(self, keys: Sequence[str], minute: int) -> dict[str, Counts]: ...

    async def leaderboard(self, window_min: int, by: TopBy, limit: int, min_volume: int) -> Leaderboard: ...

    async def entities(self, after: str | None, limit: int) -> list[str]: ...

    async def find(self, name: str) -> str | None: ...

    async def near(self, name: str, limit: int) -> list[str]: ...

    async def active(self, window_min: int) -> list[str]: ...

    async def sources(self) -> list[str]: ...

    async def entity_sources(self, entity: str) -> list[str]: ...

    async def progress(self) -> list[PartitionProgress]: ...

    async def close(self) -> None: ...
