"""Per-minute sentiment counts, the offset fence that keeps them exact, and the batch oracle.

A record is counted once: each store shard remembers, per Kafka partition, the last offset it
applied (`PartitionState`), and a batch's changes are applied together with the new fence in
one atomic step, only if the fence still reads what the writer last saw (docs/design.md). A
replayed record (offset <= applied) is skipped, so redelivery never counts twice.

Scores are summed as integer micro-units (`SCORE_SCALE`): integer sums do not depend on the
order records arrive in, so a streaming fold, a rebuild and the oracle agree to the last digit.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from stream_app.engine.types import LABELS

SCORE_SCALE = 1_000_000


def score_units(score: float) -> int:
    """A score in [-1, 1] as integer micro-units: what every sum is kept in."""
    return round(score * SCORE_SCALE)


@dataclass(slots=True)
class Counts:
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    score_micro: int = 0  # the sum of scores, in micro-units (`score_units`)

    @classmethod
    def of(cls, negative: int, neutral: int, positive: int, score_sum: float) -> Counts:
        return cls(negative, neutral, positive, score_units(score_sum))

    @property
    def score_sum(self) -> float:
        return self.score_micro / SCORE_SCALE

    @property
    def volume(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.volume if self.volume else 0.0

    @property
    def negative_share(self) -> float:
        return self.negative / self.volume if self.volume else 0.0

    def add(self, label: str, score: float) -> None:
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}")
        setattr(self, label, getattr(self, label) + 1)
        self.score_micro += score_units(score)

    def merge(self, other: Counts) -> Counts:
        return Counts(
            self.negative + other.negative,
            self.neutral + other.neutral,
            self.positive + other.positive,
            self.score_micro + other.score_micro,
        )

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.negative - other.negative,
            self.neutral - other.neutral,
            self.positive - other.positive,
            self.score_micro - other.score_micro,
        )

    def encode(self) -> str:
        """`negative,neutral,positive,score_micro`: four integers (the store's value format)."""
        return f"{self.negative},{self.neutral},{self.positive},{self.score_micro}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> Counts:
        if not raw:
            return cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        neg, neu, pos, micro = text.split(",")
        return cls(int(neg), int(neu), int(pos), int(micro))

    def as_dict(self) -> dict[str, float | int]:
        return {
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "volume": self.volume,
            "mean_score": self.mean_score,
            "negative_share": self.negative_share,
        }


class CountedRecord(NamedTuple):
    """The part of a scored record the counters need. `keys` are the aggregates it feeds,
    e.g. ``src:x``, ``ent:Tesla`` and ``ent:Tesla|src:x``. A named tuple: millions are built
    per minute on a busy worker and in a rebuild, and a tuple is the cheapest immutable record."""

    topic: str
    partition: int
    offset: int
    keys: tuple[str, ...]
    event_ts: float
    label: str
    score: float


MINUTE, HOUR, DAY = 60, 3600, 86400


def minute_of(ts: float) -> int:
    """The start (epoch seconds) of the minute `ts` falls in: the one place minutes are rounded."""
    return int(ts // MINUTE) * MINUTE


def hour_of(ts: float) -> int:
    return int(ts // HOUR) * HOUR


def day_of(ts: float) -> int:
    return int(ts // DAY) * DAY


@dataclass(frozen=True, slots=True)
class PartitionState:
    """What a store shard remembers per partition, written atomically with its counts: the last
    offset applied, the newest event time seen (the lateness rule's watermark), how many records
    were late, and (wall clock) when it last advanced, which tells idle partitions apart."""

    offset: int = -1
    watermark: float = 0.0
    late: int = 0
    updated: float = 0.0

    def encode(self) -> str:
        return f"{self.offset},{self.watermark!r},{self.late},{self.updated!r}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> PartitionState:
        if not raw:
            return cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        offset, watermark, late, updated = text.split(",")
        return cls(int(offset), float(watermark), int(late), float(updated))


Rows = dict[int, dict[str, list[int]]]  # minute -> aggregate key -> [negative, neutral, positive, score_micro]


@dataclass
class PartitionDelta:
    """What one batch adds to one partition's counts, and the state it reaches. `rows` is the
    fold's own form (plain dicts and lists, what the Redis store sends); `buckets` the same as
    `Counts` per (aggregate, minute)."""

    state: PartitionState
    rows: Rows = field(default_factory=dict)
    records: int = 0

    @property
    def buckets(self) -> dict[tuple[str, int], Counts]:
        return {(key, minute): Counts(*row) for minute, keys in self.rows.items() for key, row in keys.items()}


def deltas_by_partition(
    records: Iterable[CountedRecord],
    applied: Mapping[tuple[str, int], PartitionState],
    allowed_lateness_s: float = float("inf"),
) -> dict[tuple[str, int], PartitionDelta]:
    """Fold records per partition in offset order, skipping those at or below the applied
    offset. A record whose event time is older than the partition's watermark (its newest
    event time so far) minus the allowed lateness is late: counted as late, not bucketed."""
    by_partition: dict[tuple[str, int], list[CountedRecord]] = defaultdict(list)
    for record in records:
        by_partition[(record.topic, record.partition)].append(record)
    out: dict[tuple[str, int], PartitionDelta] = {}
    for tp, items in by_partition.items():
        state = applied.get(tp, PartitionState())
        offset, watermark, late = state.offset, state.watermark, state.late
        # minute -> key -> [negative, neutral, positive, score_micro]: the hot loop, kept to plain
        # dicts and lists (a record's keys share its minute, so no tuple is built per key)
        sums: dict[int, dict[str, list[int]]] = {}
        fresh = 0
        ordered = all(a.offset < b.offset for a, b in itertools.pairwise(items))
        columns = _LABEL_COLUMN
        for _, _, record_offset, keys, event_ts, label, score in items if ordered else sorted(items, key=_offset):
            if record_offset <= offset:
                continue
            offset = record_offset
            fresh += 1
            if not keys:  # e.g. a dead letter: it only advances the offset
                continue
            if event_ts < watermark - allowed_lateness_s:
                late += 1
                continue
            if event_ts > watermark:
                watermark = event_ts
            minute = int(event_ts // MINUTE) * MINUTE  # minute_of, inlined: this loop runs per record
            column, micro = columns[label], round(score * SCORE_SCALE)
            rows = sums.get(minute)
            if rows is None:
                rows = sums[minute] = {}
            for key in keys:
                row = rows.get(key)
                if row is None:
                    row = rows[key] = [0, 0, 0, 0]
                row[column] += 1
                row[3] += micro
        if offset != state.offset:
            out[tp] = PartitionDelta(PartitionState(offset, watermark, late, state.updated), sums, fresh)
    return out


_LABEL_COLUMN = {label: index for index, label in enumerate(LABELS)}


def _offset(record: CountedRecord) -> int:
    return record.offset


def recompute(
    records: Iterable[CountedRecord], allowed_lateness_s: float = float("inf")
) -> tuple[dict[tuple[str, int], Counts], int]:
    """The batch oracle, written apart from the streaming fold: every record once, each
    partition in offset order, the same lateness rule. Returns bucket totals and late count."""
    unique = {(r.topic, r.partition, r.offset): r for r in records}
    per_partition: dict[tuple[str, int], list[CountedRecord]] = defaultdict(list)
    for record in unique.values():
        per_partition[(record.topic, record.partition)].append(record)
    totals: dict[tuple[str, int], Counts] = defaultdict(Counts)
    late = 0
    for items in per_partition.values():
        watermark = 0.0
        for record in sorted(items, key=lambda r: r.offset):
            if not record.keys:
                continue
            if record.event_ts < watermark - allowed_lateness_s:
                late += 1
                continue
            watermark = max(watermark, record.event_ts)
            for key in record.keys:
                totals[(key, minute_of(record.event_ts))].add(record.label, record.score)
    return dict(totals), late
