"""What the stream edge needs from the composition root (stream_app/wiring.py builds it): the
batch path, the inference runner, the sinks, the store, the detector and the page's reads.

`start()` starts the sinks, in order, then the runner; `stop()` stops the runner, then flushes
and stops the sinks in reverse order, each step on its own so one failure does not leak the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.models import Alert, DeadLetter, ScoredEvent
from stream_app.alerting.service import AlertService
from stream_app.pipeline.ports import AggregateStore, Sink
from stream_app.pipeline.process import Prepared, RawRecord
from stream_app.pipeline.resilience import RetryPolicy
from stream_app.web.api import AlertReader
from stream_app.web.routes import ModelSwap

log = logging.getLogger(__name__)


class Processor(Protocol):
    """The batch path the stream edge drives (`BatchProcessor`)."""

    async def prepare(self, batch: Sequence[RawRecord]) -> Prepared: ...

    async def commit(self, prepared: Prepared) -> list[ScoredEvent]: ...

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...


class Runner(Protocol):
    """The inference runner's lifecycle (`InferenceRunner`)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Reloader(Protocol):
    """The live model swap's SIGHUP handler (`ModelSwapper`)."""

    def on_sighup(self, read_model_dir: Callable[[], Any]) -> None: ...


@dataclass(frozen=True)
class Outputs:
    """Where the stream edge's topics are: scored events, dead letters and alerts."""

    scored: Sink[ScoredEvent]
    dead: Sink[DeadLetter]
    alerts: Sink[Alert]


@dataclass
class Wiring:
    processor: Processor
    runner: Runner | None = None
    store: AggregateStore | None = None
    sinks: list[Sink[Any]] = field(default_factory=list)
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    alerts: AlertService | None = None
    alert_state: AlertReader | None = None
    watchlist: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # folded alias -> entity, for lookups
    swap_model: ModelSwap | None = None  # POST /admin/model
    reloader: Reloader | None = None  # SIGHUP
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()
        if self.runner is not None:
            await self.runner.start()

    async def stop(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.runner is not None:
            steps.append(("inference runner", self.runner.stop))
        for sink in reversed(self.sinks):
            steps += [(f"{type(sink).__name__} flush", sink.flush), (f"{type(sink).__name__}", sink.stop)]
        for what, step in steps:
            try:
                await step()
            except Exception:  # shutdown carries on: the other resources still need closing
                log.exception("could not stop the %s", what)


WiringFactory = Callable[[Outputs, Any], Wiring]  # (outputs, the worker's metrics) -> Wiring
