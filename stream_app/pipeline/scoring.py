"""Join normalized events with their sentiment into published `ScoredEvent`s."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.models import NormalizedEvent, ScoredEvent
from stream_app.engine.types import Sentiment

SNIPPET_CHARS = 280


def to_scored(
    events: Sequence[NormalizedEvent],
    sentiments: Sequence[Sentiment],
    entities: Sequence[list[str]],
    received_monotonic: Sequence[float],
    model_name: str,
    model_version: str,
    model_revision: str | None = None,
    counted: Sequence[list[str]] | None = None,
    domains: Sequence[str] | None = None,
) -> list[ScoredEvent]:
    """`counted`: per event, the entities its aggregates feed; `domains`: the head that scored it."""
    counted = counted if counted is not None else entities
    domains = domains if domains is not None else ["social"] * len(events)
    now = datetime.now(UTC)
    done = time.monotonic()
    # Built without re-validation (`model_construct`): every field comes from a validated
    # `NormalizedEvent` or a `Sentiment`, and validating each record again was a hot spot.
    return [
        ScoredEvent.model_construct(
            id=e.id,
            source=e.source,
            platform=e.platform,
            created_at=e.created_at,
            text=e.text[:SNIPPET_CHARS],
            author=e.author,
            product=e.product,
            brand=e.brand,
            label=s.label,  # a LABELS member
            probabilities=s.probabilities,  # keys are LABELS
            score=s.score,
            model_name=model_name,
            model_version=model_version,
            model_revision=model_revision,
            processed_at=now,
            entities=ents,
            processing_ms=max(0.0, (done - t) * 1000),
            domain=domain,
            counted=tracked,
            topic=e.topic,
            partition=e.partition,
            offset=e.offset,
        )
        for e, s, ents, t, tracked, domain in zip(
            events, sentiments, entities, received_monotonic, counted, domains, strict=True
        )
    ]
