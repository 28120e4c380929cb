"""Kafka topics as `Sink`s: the enriched and dead-letter topics, and the alerts topic.

They take Faust topics (anything with `send` and `get_topic_name`), so they need no faust import.
A write returns once the broker acknowledged every record of the batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from schemas.models import Alert, DeadLetter, ScoredEvent
from stream_app.pipeline.ports import Sink

Record = TypeVar("Record", bound=BaseModel)


class OutputObserver(Protocol):
    def records_out(self, topic: str, count: int) -> None: ...


class TopicSink(Generic[Record]):
    """Implements `Sink[Record]`: each record as JSON under its key; `write` waits for every ack.

    Records go to the app's producer directly (`Producer.send`, what `Topic.send` ends in): the
    topics here are raw bytes with no attachments, so Faust's per-message wrapping (a pending and
    a future message, its sensors, a completion callback) is pure cost: about 70 µs of CPU per
    record, 2-3 times the send itself (docs/serving.md)."""

    def __init__(self, topic: Any, key: Callable[[Record], bytes], observer: OutputObserver) -> None:
        self.topic, self.key, self.observer = topic, key, observer

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        name = self.topic.get_topic_name()
        send = (await self.topic.app.maybe_start_producer()).send
        pending = [await send(name, self.key(r), r.model_dump_json().encode(), None, None, None) for r in batch]
        await asyncio.gather(*pending)
        self.observer.records_out(name, len(batch))

    async def flush(self) -> None:
        return None  # every write waited for its acknowledgements

    async def stop(self) -> None:
        return None


def scored_sink(topic: Any, observer: OutputObserver) -> TopicSink[ScoredEvent]:
    return TopicSink(topic, lambda e: e.id.encode(), observer)


def dead_letter_sink(topic: Any, observer: OutputObserver) -> TopicSink[DeadLetter]:
    return TopicSink(topic, lambda d: f"{d.topic}:{d.partition}:{d.offset}".encode(), observer)


def alert_sink(topic: Any, observer: OutputObserver) -> TopicSink[Alert]:
    """Keyed by entity, so one entity's alerts stay in order."""
    return TopicSink(topic, lambda a: a.entity.encode(), observer)


class EarlySink(Generic[Record]):
    """A `Sink` whose batches can start travelling before they are written. The batch loop calls
    `send_early` as soon as a batch is scored, so its records go to the broker while the batch
    before it is still being written to Redis; the processor's commit (one batch at a time, in
    batch order) then calls `write`, which only waits for that send. Publish-then-count per batch
    is unchanged: a batch's Redis write still starts after its own publish is acknowledged.

    `write` takes over the oldest early send when it is for the same batch (the same list);
    otherwise, and on a retry after a failed early send, it sends the batch itself."""

    def __init__(self, inner: Sink[Record]) -> None:
        self.inner = inner
        self.early: deque[tuple[Sequence[Record], asyncio.Future[None]]] = deque()

    def send_early(self, batch: Sequence[Record]) -> None:
        self.early.append((batch, asyncio.ensure_future(self.inner.write(batch))))

    async def start(self) -> None:
        await self.inner.start()

    async def write(self, batch: Sequence[Record]) -> None:
        if self.early and self.early[0][0] is batch:
            await self.early.popleft()[1]
            return
        await self.inner.write(batch)

    async def flush(self) -> None:
        await self.inner.flush()

    async def stop(self) -> None:
        """Shutdown: drop sends nobody will wait for (their batches are not acknowledged)."""
        while self.early:
            self.early.popleft()[1].cancel()
        await self.inner.stop()
