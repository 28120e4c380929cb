"""Fakes behind the seams' Protocols, for unit tests that need no services."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.models import DeadLetter, ScoredEvent
from stream_app.engine.types import Sentiment
from stream_app.pipeline.counts import CountedRecord, Counts, deltas_by_partition


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
    """The same offset-fenced absolute-partials logic as Redis, in a dict."""

    def __init__(self) -> None:
        self.applied: dict[tuple[str, int], int] = {}
        self.partials: dict[tuple[str, int, str, int], Counts] = {}

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        fresh = 0
        for (topic, partition), delta in deltas_by_partition(records, self.applied).items():
            for (source, minute), added in delta.buckets.items():
                key = (source, minute, topic, partition)
                self.partials[key] = self.partials.get(key, Counts()).merge(added)
                fresh += added.volume
            self.applied[(topic, partition)] = delta.max_offset
        return fresh

    def totals(self) -> dict[tuple[str, int], Counts]:
        out: dict[tuple[str, int], Counts] = {}
        for (source, minute, _, _), counts in self.partials.items():
            out[(source, minute)] = out.get((source, minute), Counts()).merge(counts)
        return out
