"""Fakes behind the seams' Protocols, for unit tests that need no services."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.models import DeadLetter, ScoredEvent
from stream_app.engine.types import Sentiment
from stream_app.pipeline.counts import CountedRecord, Counts, PartitionState, deltas_by_partition


class KeywordClassifier:
    """Negative if the text says 'bad', positive if 'good', else neutral."""

    def classify(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts:
            probs = [0.8, 0.1, 0.1] if "bad" in text else [0.1, 0.1, 0.8] if "good" in text else [0.1, 0.8, 0.1]
            out.append(Sentiment.from_probabilities(probs))
        return out

    async def classify_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return self.classify(texts)


class ListPublisher:
    def __init__(self) -> None:
        self.scored: list[ScoredEvent] = []
        self.dead: list[DeadLetter] = []

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        self.scored.extend(scored)
        self.dead.extend(dead)


class MemoryCountsSink:
    """The same offset-fenced absolute-partials logic as Redis, in dicts."""

    def __init__(self, allowed_lateness_s: float = float("inf")) -> None:
        self.allowed_lateness_s = allowed_lateness_s
        self.applied: dict[tuple[str, int], PartitionState] = {}
        self.partials: dict[tuple[str, int, str, int], Counts] = {}

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        fresh = 0
        for tp, delta in deltas_by_partition(records, self.applied, self.allowed_lateness_s).items():
            for (key, minute), added in delta.buckets.items():
                slot = (key, minute, *tp)
                self.partials[slot] = self.partials.get(slot, Counts()).merge(added)
            self.applied[tp] = delta.state
            fresh += delta.records
        return fresh

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: self.applied[tp].offset for tp in partitions if tp in self.applied}

    def totals(self) -> dict[tuple[str, int], Counts]:
        out: dict[tuple[str, int], Counts] = {}
        for (key, minute, _, _), counts in self.partials.items():
            out[(key, minute)] = out.get((key, minute), Counts()).merge(counts)
        return out

    def late(self) -> int:
        return sum(state.late for state in self.applied.values())


class MinuteStore:
    """An AggregateStore read side over a dict: every minute of a key holds the same counts."""

    def __init__(self, per_minute: dict[str, Counts]) -> None:
        self.per_minute = per_minute

    async def range_counts(self, key: str, first_minute: int, last_minute: int) -> dict[int, Counts]:
        counts = self.per_minute.get(key)
        return {m: counts for m in range(first_minute, last_minute + 60, 60)} if counts else {}

    async def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.per_minute if k.startswith(prefix))
