"""Fakes behind the seams' Protocols, for unit tests that need no services."""

from __future__ import annotations

import time
from collections.abc import Sequence

from schemas.models import DeadLetter, ScoredEvent
from stream_app.engine.types import Sentiment
from stream_app.pipeline.counts import Counts, minute_of
from stream_app.testing.memory import MemoryAggregateStore


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


class MinuteStore(MemoryAggregateStore):
    """A memory store whose keys hold the same counts in every minute of the last day and of the
    next hours (so a test module built at import still sees full windows when it runs later)."""

    def __init__(self, per_minute: dict[str, Counts], now: float | None = None) -> None:
        super().__init__()
        last = minute_of(time.time() if now is None else now)
        for key, counts in per_minute.items():
            for minute in range(last - 1439 * 60, last + 6 * 3600, 60):
                self.buckets[(key, minute)] = counts


MemoryCountsSink = MemoryAggregateStore
