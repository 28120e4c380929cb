"""One micro-batch, start to finish, with no Kafka or Faust types in sight.

Every output is a `Sink` (stream_app/pipeline/ports.py). Order matters for at-least-once: write
the scored events and dead letters and wait until the broker has them, then write the counts to
the store (fenced by the batch's offsets), and only then return, after which the stream layer
may acknowledge (and later commit) the batch's offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.models import DeadLetter, NormalizedEvent, ScoredEvent
from stream_app.engine.types import AsyncClassifier
from stream_app.errors import InvalidRecord
from stream_app.pipeline.counts import CountedRecord
from stream_app.pipeline.entities import EntityExtractor
from stream_app.pipeline.keys import record_keys
from stream_app.pipeline.ports import AggregateWrites, Sink
from stream_app.pipeline.routing import route
from stream_app.pipeline.samples import PostSample
from stream_app.pipeline.scoring import to_scored
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.pipeline.validate import (
    DEAD_LETTER_MAX_ORIGINAL_BYTES,
    MAX_PAYLOAD_BYTES,
    Kind,
    make_dead_letter,
    parse_record,
)
from stream_app.pipeline.windows import EntityAdmission

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as the stream layer hands it over."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    received_monotonic: float


class BatchObserver(Protocol):
    """Metrics hook; the default does nothing so tests need not care."""

    def batch_done(self, size: int, scored: int, dead: Sequence[DeadLetter], seconds: float) -> None: ...

    def aggregates_written(self, seconds: float, event_ages_s: Sequence[float]) -> None: ...

    def aggregates_failed(self) -> None: ...


class _NoObserver:
    def batch_done(self, size: int, scored: int, dead: Sequence[DeadLetter], seconds: float) -> None:
        return None

    def aggregates_written(self, seconds: float, event_ages_s: Sequence[float]) -> None:
        return None

    def aggregates_failed(self) -> None:
        return None


@dataclass(frozen=True)
class Prepared:
    """A scored batch waiting to be published and counted."""

    size: int
    events: list[NormalizedEvent]
    scored: list[ScoredEvent]
    dead: list[DeadLetter]
    started: float


@dataclass
class BatchProcessor:
    """`scored` and `dead` are the enriched and dead-letter topics; `store` counts the batch
    (and says what it already holds); `samples`, when alerting is on, keeps recent posts."""

    classifier: AsyncClassifier
    scored: Sink[ScoredEvent]
    dead: Sink[DeadLetter]
    store: AggregateWrites
    kinds: dict[str, Kind]
    max_text_chars: int = 10_000
    observer: BatchObserver = field(default_factory=_NoObserver)
    extractor: EntityExtractor = field(default_factory=EntityExtractor)
    admission: EntityAdmission | None = None
    samples: Sink[tuple[str, PostSample]] | None = None
    bounds: EventTimeBounds | None = None  # None: any event time (unit tests with fixed dates)
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    dead_letter_max_original_bytes: int = DEAD_LETTER_MAX_ORIGINAL_BYTES
    finance_entities: frozenset[str] = frozenset()  # watch-list entries declared `domain: finance`

    def split(self, batch: Sequence[RawRecord]) -> tuple[list[tuple[RawRecord, NormalizedEvent]], list[DeadLetter]]:
        valid: list[tuple[RawRecord, NormalizedEvent]] = []
        dead: list[DeadLetter] = []
        now = time.time()
        for raw in batch:
            kind = self.kinds.get(raw.topic)
            try:
                if kind is None:
                    raise InvalidRecord("invalid_value", f"no contract for topic {raw.topic!r}")
                event = parse_record(
                    raw.value,
                    kind,
                    topic=raw.topic,
                    partition=raw.partition,
                    offset=raw.offset,
                    max_text_chars=self.max_text_chars,
                    max_payload_bytes=self.max_payload_bytes,
                )
                if self.bounds is not None:
                    self.bounds.check(event.created_at, now)
            except InvalidRecord as exc:
                dead.append(
                    make_dead_letter(
                        raw.value,
                        exc,
                        topic=raw.topic,
                        partition=raw.partition,
                        offset=raw.offset,
                        max_original_bytes=self.dead_letter_max_original_bytes,
                    )
                )
                continue
            valid.append((raw, event))
        return valid, dead

    def _tracked(self, entities: list[str]) -> list[str]:
        return self.admission.filter(entities) if self.admission else entities

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The store's own fences: where a consumer resumes after Redis lost writes."""
        return await self.store.resume_offsets(partitions)

    async def process(self, batch: Sequence[RawRecord]) -> list[ScoredEvent]:
        """Both phases, one after the other."""
        return await self.commit(await self.prepare(batch))

    async def prepare(self, batch: Sequence[RawRecord]) -> Prepared:
        """Validate and score. Records the sink already applied (redelivered after a crash) are
        skipped, so a record is published again only if it was not counted, and the last
        publication of an id is always the one the aggregates hold. The stream layer may run
        this for batch n+1 while `commit` of batch n is still under way."""
        started = time.monotonic()
        applied = await self.store.applied_offsets(sorted({(r.topic, r.partition) for r in batch}))
        fresh = [r for r in batch if r.offset > applied.get((r.topic, r.partition), -1)]
        valid, dead = self.split(fresh)
        events = [event for _, event in valid]
        entities = [self.extractor.extract(e.text, e.product, e.brand) for e in events]
        domains = [
            route(e.source, e.text, found, self.finance_entities) for e, found in zip(events, entities, strict=True)
        ]
        sentiments, model = await self.classifier.classify_versioned([e.text for e in events], domains)
        scored = to_scored(
            events,
            sentiments,
            entities,
            [raw.received_monotonic for raw, _ in valid],
            model.name,
            model.version,
            model_revision=model.revision,
            counted=[self._tracked(found) for found in entities],  # once: admission counts mentions
            domains=domains,
        )
        return Prepared(len(batch), events, scored, dead, started)

    async def commit(self, prepared: Prepared) -> list[ScoredEvent]:
        """Publish and wait for the broker, then write the aggregates. Commits must run in
        batch order: the Redis fence relies on each partition's offsets arriving in order."""
        events, scored, dead = prepared.events, prepared.scored, prepared.dead
        await asyncio.gather(self.scored.write(scored), self.dead.write(dead))
        tracked = [s.counted or [] for s in scored]
        records = (
            [
                CountedRecord(
                    e.topic,
                    e.partition,
                    e.offset,
                    record_keys(s.platform.lower(), entities),
                    e.created_at.timestamp(),
                    s.label,
                    s.score,
                )
                for e, s, entities in zip(events, scored, tracked, strict=True)
            ]
            # Dead letters carry no counts but advance the fence, so they are not re-sent either.
            + [CountedRecord(d.topic, d.partition, d.offset, (), 0.0, "neutral", 0.0) for d in dead]
        )
        write_started = time.monotonic()
        try:
            await self.store.write(records)
        except Exception:
            self.observer.aggregates_failed()
            raise
        now = time.time()
        self.observer.aggregates_written(
            time.monotonic() - write_started, [now - e.created_at.timestamp() for e in events]
        )
        if self.samples is not None:  # after the figures above: they time the aggregate write alone
            await self._sample(self.samples, events, scored, tracked)
        self.observer.batch_done(prepared.size, len(scored), dead, time.monotonic() - prepared.started)
        return scored

    async def _sample(
        self,
        sink: Sink[tuple[str, PostSample]],
        events: Sequence[NormalizedEvent],
        scored: Sequence[ScoredEvent],
        tracked: Sequence[list[str]],
    ) -> None:
        samples = [
            (entity, PostSample(s.id, e.created_at.timestamp(), s.label, s.score, s.platform, s.text))
            for e, s, entities in zip(events, scored, tracked, strict=True)
            for entity in entities
        ]
        try:
            await sink.write(samples)
        except Exception:  # samples only explain alerts; losing some must not stall the stream
            log.warning("could not store post samples", exc_info=True)
