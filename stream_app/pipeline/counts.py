"""Per-source, per-minute sentiment counts, split by the Kafka partition that produced them.

Why split by partition: at any moment one worker owns a partition, so the partial count
for (bucket, partition) has a single writer. That writer can store it as an absolute
value together with the partition's last applied offset, in one Redis transaction.
A replayed record (offset <= applied) is skipped, so redelivery never counts twice.
Readers sum the partials of a bucket.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stream_app.engine.types import LABELS


@dataclass(slots=True)
class Counts:
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    score_sum: float = 0.0

    @property
    def volume(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.volume if self.volume else 0.0

    def add(self, label: str, score: float) -> None:
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}")
        setattr(self, label, getattr(self, label) + 1)
        self.score_sum += score

    def merge(self, other: Counts) -> Counts:
        return Counts(
            self.negative + other.negative,
            self.neutral + other.neutral,
            self.positive + other.positive,
            self.score_sum + other.score_sum,
        )

    def encode(self) -> str:
        return f"{self.negative},{self.neutral},{self.positive},{self.score_sum!r}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> Counts:
        if not raw:
            return cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        neg, neu, pos, total = text.split(",")
        return cls(int(neg), int(neu), int(pos), float(total))

    def as_dict(self) -> dict[str, float | int]:
        return {
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "volume": self.volume,
            "mean_score": self.mean_score,
        }


@dataclass(frozen=True, slots=True)
class CountedRecord:
    """The part of a scored record the counters need."""

    topic: str
    partition: int
    offset: int
    source: str
    event_ts: float
    label: str
    score: float


def minute_of(ts: float) -> int:
    return int(ts // 60) * 60


@dataclass
class PartitionDelta:
    """What one batch adds to one partition's partial counts, and the offset it reaches."""

    max_offset: int
    buckets: dict[tuple[str, int], Counts] = field(default_factory=dict)


def deltas_by_partition(
    records: Iterable[CountedRecord], applied: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], PartitionDelta]:
    """Group by partition, skipping records at or below the partition's applied offset."""
    out: dict[tuple[str, int], PartitionDelta] = {}
    for record in records:
        tp = (record.topic, record.partition)
        if record.offset <= applied.get(tp, -1):
            continue
        delta = out.setdefault(tp, PartitionDelta(max_offset=record.offset))
        delta.max_offset = max(delta.max_offset, record.offset)
        key = (record.source, minute_of(record.event_ts))
        delta.buckets.setdefault(key, Counts()).add(record.label, record.score)
    return out


def recompute(records: Iterable[CountedRecord]) -> dict[tuple[str, int], Counts]:
    """The batch oracle: counts per (source, minute) straight from the records, deduplicated by offset."""
    seen: set[tuple[str, int, int]] = set()
    totals: dict[tuple[str, int], Counts] = defaultdict(Counts)
    for r in records:
        if (r.topic, r.partition, r.offset) in seen:
            continue
        seen.add((r.topic, r.partition, r.offset))
        totals[(r.source, minute_of(r.event_ts))].add(r.label, r.score)
    return dict(totals)
