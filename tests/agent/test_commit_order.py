"""The batch loop's commit chain, pinned: for every batch, publish acknowledged -> Redis written ->
offsets acknowledged; Redis writes one batch at a time, in batch order; and the pipelining that
the order allows (docs/serving.md): batch n+1 is scored and its publish is under way while batch
n's Redis write runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import faust
import orjson
import pytest
from faust.agents.agent import AgentTestWrapper

from schemas.models import ScoredEvent
from stream_app.ingest.app import build_app
from stream_app.ingest.parts import Outputs, Wiring
from stream_app.pipeline.counts import CountedRecord
from stream_app.pipeline.process import BatchProcessor
from stream_app.pipeline.resilience import Retrying
from stream_app.settings import load_settings
from stream_app.testing.fakes import KeywordClassifier, ListSink, MemoryCountsSink
from stream_app.wiring import retry_policy, stream_config

RECORDS = 24
BATCH = 4
TS = "2026-03-01T12:00:30Z"
Journal = list[tuple[str, int]]  # (step, first offset of the batch) or ("ack", offset)


class SlowTopic(ListSink[ScoredEvent]):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def write(self, batch: Sequence[ScoredEvent]) -> None:
        first = min(int(e.id[1:]) for e in batch)
        self.journal.append(("publish", first))
        await asyncio.sleep(0.03)  # the broker's acknowledgement
        self.journal.append(("published", first))


class SlowSink(MemoryCountsSink):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        first = min(r.offset for r in records)
        self.journal.append(("redis", first))
        await asyncio.sleep(0.03)
        applied = await super().apply(records)
        self.journal.append(("redis written", first))
        return applied


def _post(i: int) -> bytes:
    return orjson.dumps({"id": f"p{i}", "text": "good" if i % 2 else "bad", "created_at": TS, "platform": "X"})


async def test_publish_then_redis_then_ack_per_batch_with_batches_overlapping(tmp_path, monkeypatch) -> None:
    journal: Journal = []
    sink = SlowSink(journal)

    def wiring(outputs: Outputs, metrics: Any) -> Wiring:
        outputs.scored.inner = SlowTopic(journal)  # type: ignore[attr-defined]  # EarlySink(<Kafka topic>)
        outputs.dead.inner = ListSink()  # type: ignore[attr-defined]
        kinds = {"<internal>": "post"}  # the test channel's topic name
        scored = Retrying(outputs.scored, "publish", retry_policy())
        dead = Retrying(outputs.dead, "publish", retry_policy())
        return Wiring(processor=BatchProcessor(KeywordClassifier(), scored, dead, sink, kinds))

    real_ack = faust.Stream.ack

    async def ack(stream: Any, event: Any) -> bool:
        final = await real_ack(stream, event)
        if final:  # the reference that makes the offset committable (the batch loop's own)
            journal.append(("ack", event.message.offset))
        return bool(final)

    monkeypatch.setattr(faust.Stream, "ack", ack)
    real_to_message = AgentTestWrapper.to_message

    def to_message(wrapper: Any, *args: Any, **kwargs: Any) -> Any:
        message = real_to_message(wrapper, *args, **kwargs)
        message.incref()  # the stream's reference, as Faust's Conductor takes it for a consumed record
        return message

    monkeypatch.setattr(AgentTestWrapper, "to_message", to_message)
    settings = load_settings(data_dir=tmp_path, batch_max_size=BATCH, batch_max_wait_s=0.01)
    app = build_app(stream_config(settings), wiring)
    app.sm_ready.set()
    async with app.agents["stream_app.ingest.agent.score"].test_context() as context:
        for i in range(RECORDS):
            await context.put(_post(i), key=b"k", partition=0, wait=False)
        for _ in range(1000):
            if sum(step == "ack" for step, _ in journal) >= RECORDS:
                break
            await asyncio.sleep(0.01)

    at = {entry: n for n, entry in enumerate(journal)}
    acks = [offset for step, offset in journal if step == "ack"]
    assert acks == list(range(RECORDS))
    batches = [first for step, first in journal if step == "redis"]
    assert batches == sorted(batches) and len(batches) >= RECORDS // BATCH
    ends = [*batches[1:], RECORDS]
    for first, end in zip(batches, ends, strict=True):
        assert at[("published", first)] < at[("redis", first)] < at[("redis written", first)]
        assert all(at[("redis written", first)] < at[("ack", offset)] for offset in range(first, end))
    for first, following in pairwise(batches):
        assert at[("redis written", first)] < at[("redis", following)]  # one Redis write at a time
    overlapped = [
        first for first, following in pairwise(batches)
        if at[("publish", following)] < at[("redis written", first)]
    ]  # fmt: skip
    assert overlapped, f"no publish overlapped the previous batch's Redis write: {journal}"
    assert sum(c.volume for c in sink.totals().values()) == RECORDS


@pytest.mark.parametrize("fail_early", [True, False])
async def test_an_early_send_that_fails_is_sent_again_by_the_retrying_sink(fail_early: bool) -> None:
    from stream_app.ingest.publishers import EarlySink

    sent: list[int] = []

    class Flaky(ListSink[ScoredEvent]):
        fails = 1 if fail_early else 0

        async def write(self, batch: Sequence[ScoredEvent]) -> None:
            if self.fails:
                self.fails -= 1
                raise OSError("broker away")
            sent.append(len(batch))

    early: EarlySink[ScoredEvent] = EarlySink(Flaky())
    scored: list[ScoredEvent] = []
    early.send_early(scored)
    await Retrying(early, "publish", retry_policy()).write(scored)
    assert sent == [0] and not early.early
