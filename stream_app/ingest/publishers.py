"""Kafka publishers behind the pipeline's `Publisher` and the alert service's `AlertPublisher`.

They take Faust topics (anything with `send` and `get_topic_name`), so they need no faust import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from exporters.prometheus import PipelineMetrics
from schemas.models import Alert, DeadLetter, ScoredEvent


class FaustPublisher:
    """Implements `Publisher`: sends, then waits until the broker acknowledged every record."""

    def __init__(self, scored_topic: Any, dead_topic: Any, metrics: PipelineMetrics) -> None:
        self.scored_topic = scored_topic
        self.dead_topic = dead_topic
        self.metrics = metrics

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        pending = []
        for event in scored:
            pending.append(await self.scored_topic.send(key=event.id.encode(), value=event.model_dump_json().encode()))
        for letter in dead:
            pending.append(
                await self.dead_topic.send(
                    key=f"{letter.topic}:{letter.partition}:{letter.offset}".encode(),
                    value=letter.model_dump_json().encode(),
                )
            )
        if pending:
            await asyncio.gather(*pending)
        self.metrics.messages_out.labels(topic=self.scored_topic.get_topic_name()).inc(len(scored))
        self.metrics.messages_out.labels(topic=self.dead_topic.get_topic_name()).inc(len(dead))


class FaustAlertPublisher:
    """Implements `AlertPublisher`: keyed by entity, so one entity's alerts stay in order."""

    def __init__(self, topic: Any, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics

    async def publish(self, alert: Alert) -> None:
        await (await self.topic.send(key=alert.entity.encode(), value=alert.model_dump_json().encode()))
        self.metrics.messages_out.labels(topic=self.topic.get_topic_name()).inc()
