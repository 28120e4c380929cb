"""The Faust edge alone: the agent batches events and hands their Kafka positions to the processor."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stream_app.ingest.app import build_app
from stream_app.pipeline.process import RawRecord
from stream_app.settings import load_settings
from stream_app.wiring import Wiring, stream_config


@dataclass
class Prepared:
    """What the agent reads off a prepared batch: nothing to publish early, the records to count."""

    records: list[RawRecord]
    scored: list[Any] = field(default_factory=list)
    dead: list[Any] = field(default_factory=list)


class RecordingProcessor:
    def __init__(self) -> None:
        self.batches: list[list[RawRecord]] = []

    async def prepare(self, batch: Sequence[RawRecord]) -> Prepared:
        return Prepared(list(batch))

    async def commit(self, prepared: Prepared) -> None:
        self.batches.append(prepared.records)


async def test_agent_passes_batches_with_positions_to_the_processor(tmp_path):
    recorder = RecordingProcessor()
    settings = load_settings(data_dir=tmp_path, batch_max_size=4, batch_max_wait_s=0.05)
    app = build_app(stream_config(settings), lambda *_: Wiring(processor=recorder))
    app.sm_ready.set()
    agent = app.agents["stream_app.ingest.agent.score"]
    async with agent.test_context() as context:
        for offset in range(10):
            await context.put(b"payload-%d" % offset, key=b"k", partition=offset % 2, wait=False)
        for _ in range(500):
            if sum(len(b) for b in recorder.batches) >= 10:
                break
            await asyncio.sleep(0.01)
    records = [r for batch in recorder.batches for r in batch]
    assert [r.value for r in records] == [b"payload-%d" % i for i in range(10)]
    assert [(r.partition, r.offset) for r in records] == [(i % 2, i) for i in range(10)]
    assert all(len(batch) <= 4 for batch in recorder.batches)


async def test_app_shutdown_stops_the_wiring(tmp_path):
    stopped: list[bool] = []

    class StoppingWiring(Wiring):
        async def stop(self) -> None:
            stopped.append(True)

    app = build_app(
        stream_config(load_settings(data_dir=tmp_path)), lambda *_: StoppingWiring(processor=RecordingProcessor())
    )
    app.sm_ready.set()
    await app.on_before_shutdown.send()
    assert stopped == [True] and not app.sm_ready.is_set()
