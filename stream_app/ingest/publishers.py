"""Kafka publishers behind the pipeline's `Publisher` and the alert service's `AlertPublisher`.

They take Faust topics (anything with `send` and `get_topic_name`), so they need no faust import.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from exporters.prometheus import PipelineMetrics
from schemas.models import Alert, DeadLetter, ScoredEvent


class FaustPublisher:
    """Implements `Publisher`: sends, then waits until the broker acknowledged every record.

    Records go to the app's producer directly (`Producer.send`, what `Topic.send` ends in): the
    topics here are raw bytes with no attachments, so Faust's per-message wrapping (a pending and
    a future message, its sensors, a completion callback) is pure cost: about 70 µs of CPU per
    record, 2-3 times the send itself (docs/serving.md)."""

    def __init__(self, scored_topic: Any, dead_topic: Any, metrics: PipelineMetrics) -> None:
        self.scored_topic = scored_topic
        self.dead_topic = dead_topic
        self.metrics = metrics

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        scored_name, dead_name = self.scored_topic.get_topic_name(), self.dead_topic.get_topic_name()
        if scored or dead:
            send = (await self.scored_topic.app.maybe_start_producer()).send
            pending = [
                await send(scored_name, e.id.encode(), e.model_dump_json().encode(), None, None, None) for e in scored
            ]
            for letter in dead:
                key = f"{letter.topic}:{letter.partition}:{letter.offset}".encode()
                pending.append(await send(dead_name, key, letter.model_dump_json().encode(), None, None, None))
            await asyncio.gather(*pending)
        self.metrics.messages_out.labels(topic=scored_name).inc(len(scored))
        self.metrics.messages_out.labels(topic=dead_name).inc(len(dead))


class FaustAlertPublisher:
    """Implements `AlertPublisher`: keyed by entity, so one entity's alerts stay in order."""

    def __init__(self, topic: Any, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics

    async def publish(self, alert: Alert) -> None:
        await (await self.topic.send(key=alert.entity.encode(), value=alert.model_dump_json().encode()))
        self.metrics.messages_out.labels(topic=self.topic.get_topic_name()).inc()


class _Publisher(Protocol):
    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None: ...


class EarlyPublisher:
    """Implements `Publisher`. The batch loop calls `send_early` as soon as a batch is scored, so
    its records travel to the broker while the batch before it is still being written to Redis;
    the processor's commit (one batch at a time, in batch order) then calls `publish`, which only
    waits for those sends. Publish-then-count per batch is unchanged: a batch's Redis write still
    starts after its own publish is acknowledged, and offsets are acknowledged after that.

    `publish` takes over the oldest early send when it is for the same batch (the same `scored`
    list); otherwise, and on a retry after a failed early send, it sends the batch itself."""

    def __init__(self, inner: _Publisher) -> None:
        self.inner = inner
        self.early: deque[tuple[Sequence[ScoredEvent], asyncio.Task[None]]] = deque()

    def send_early(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        self.early.append((scored, asyncio.ensure_future(self.inner.publish(scored, dead))))

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        if self.early and self.early[0][0] is scored:
            await self.early.popleft()[1]
            return
        await self.inner.publish(scored, dead)

    def cancel(self) -> None:
        """Shutdown: drop sends nobody will wait for (their batches are not acknowledged)."""
        while self.early:
            self.early.popleft()[1].cancel()
