"""The agent: Kafka records in micro-batches through `BatchProcessor`, offsets held until counted.

Two batches in flight: while batch n is committed (its records acknowledged by the broker, then
its counts written to the store), batch n+1 is scored and its records are sent early
(`EarlySink.send_early`); its commit then waits for those acknowledgements before its own store
write. Commits run one at a time, in batch order. Each message is held (incref) past
`take_events`' own ack and released only after its batch's store write, so no offset commits
before its counts are written (tests/agent/test_commit_order.py pins the order).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import faust

from exporters.prometheus.metrics import PipelineMetrics
from schemas.models import DeadLetter, ScoredEvent
from stream_app.ingest.kafka_config import StreamConfig
from stream_app.ingest.parts import Wiring
from stream_app.ingest.publishers import EarlySink
from stream_app.ingest.resilience import exit_worker
from stream_app.pipeline.process import RawRecord

log = logging.getLogger(__name__)

Done = dict[tuple[str, int], int]  # (topic, partition) -> last offset fully processed


def add_agent(
    app: faust.App,
    config: StreamConfig,
    wiring: Wiring,
    ready: asyncio.Event,
    metrics: PipelineMetrics,
    done: Done,
    early: tuple[EarlySink[ScoredEvent], EarlySink[DeadLetter]],
) -> None:
    inputs = app.topic(*config.topics.inputs, value_serializer="raw", key_serializer="raw")
    early_scored, early_dead = early

    @app.agent(inputs)
    async def score(stream: Any) -> None:
        """Any error escaping the batch loop ends the process (see `exit_worker`): Faust would
        otherwise restart the agent in-process and drop the batches it had taken."""
        try:
            await _score_batches(stream)
        except Exception as exc:
            exit_worker(exc)

    async def _score_batches(stream: Any) -> None:
        await ready.wait()
        previous: asyncio.Task[None] | None = None
        async for events in stream.take_events(config.batch_max_size, within=config.batch_max_wait_s):
            now = time.monotonic()
            for event in events:
                event.message.incref()
            batch = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.value, now) for e in events
            ]
            for topic, count in Counter(record.topic for record in batch).items():  # one inc per topic
                metrics.messages_in.labels(topic=topic).inc(count)
            prepared = await wiring.processor.prepare(batch)
            early_scored.send_early(prepared.scored)  # overlaps the store write of the batch before
            early_dead.send_early(prepared.dead)
            if previous is not None:
                await previous  # commits stay in batch order; re-raises a failed commit here
            previous = asyncio.create_task(_commit_then_ack(stream, prepared, list(events)))
            previous.add_done_callback(_log_failure)

    async def _commit_then_ack(stream: Any, prepared: Any, events: list[Any]) -> None:
        await wiring.processor.commit(prepared)
        written = time.time()
        metrics.records_aggregated([written - e.message.timestamp for e in events if e.message.timestamp])
        for event in events:
            await stream.ack(event)
            done[(event.message.topic, event.message.partition)] = event.message.offset


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("batch commit failed; its offsets stay uncommitted", exc_info=task.exception())
