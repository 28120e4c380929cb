"""Fakes behind the seams' Protocols, for unit tests that need no services."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from schemas.models import DeadLetter, ScoredEvent
from stream_app.engine.types import ModelInfo, Sentiment, resolve_domains
from stream_app.pipeline.counts import Counts, minute_of
from stream_app.pipeline.process import BatchProcessor
from stream_app.pipeline.validate import Kind
from stream_app.testing.memory import MemoryAggregateStore

T = TypeVar("T")


class KeywordClassifier:
    """Negative if the text says 'bad', positive if 'good', else neutral. Records the domains it
    was asked to score with (`seen_domains`)."""

    info = ModelInfo("keyword", "1", "cpu", "none")

    def __init__(self) -> None:
        self.seen_domains: list[str] = []

    def classify(self, texts: Sequence[str], domains: Sequence[str] | None = None) -> list[Sentiment]:
        self.seen_domains.extend(resolve_domains(len(texts), domains))
        out = []
        for text in texts:
            probs = [0.8, 0.1, 0.1] if "bad" in text else [0.1, 0.1, 0.8] if "good" in text else [0.1, 0.8, 0.1]
            out.append(Sentiment.from_probabilities(probs))
        return out

    async def classify_batch(self, texts: Sequence[str], domains: Sequence[str] | None = None) -> list[Sentiment]:
        return self.classify(texts, domains)

    async def classify_versioned(
        self, texts: Sequence[str], domains: Sequence[str] | None = None
    ) -> tuple[list[Sentiment], ModelInfo]:
        return self.classify(texts, domains), self.info


class ListSink(Generic[T]):
    """A `Sink` that keeps what it was given, in order."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def write(self, batch: Sequence[T]) -> None:
        self.items.extend(batch)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True


class ListPublisher:
    """The enriched and dead-letter topics as two list sinks."""

    def __init__(self) -> None:
        self.scored_sink: ListSink[ScoredEvent] = ListSink()
        self.dead_sink: ListSink[DeadLetter] = ListSink()

    @property
    def scored(self) -> list[ScoredEvent]:
        return self.scored_sink.items

    @property
    def dead(self) -> list[DeadLetter]:
        return self.dead_sink.items


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


def make_processor(
    publisher: ListPublisher | None = None,
    store: MemoryAggregateStore | None = None,
    kinds: dict[str, Kind] | None = None,
    classifier: KeywordClassifier | None = None,
    **options: Any,
) -> BatchProcessor:
    """A `BatchProcessor` over the fakes: keyword labels, list sinks, a memory store."""
    publisher = publisher if publisher is not None else ListPublisher()
    return BatchProcessor(
        classifier if classifier is not None else KeywordClassifier(),
        publisher.scored_sink,
        publisher.dead_sink,
        store if store is not None else MemoryAggregateStore(),
        kinds if kinds is not None else {"posts": "post", "reviews": "review"},
        **options,
    )
