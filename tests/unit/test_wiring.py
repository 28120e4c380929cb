"""The worker's lifecycle: `Wiring.start()` starts the runner and the alert fan-out once, and
`Wiring.stop()` closes the runner, the fan-out and the Redis connection, even when one step fails."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import stream_app.wiring as wiring_module
from exporters.prometheus.metrics import PipelineMetrics
from stream_app.engine.types import ModelInfo, Sentiment
from stream_app.settings import load_settings
from stream_app.testing.fakes import KeywordClassifier, ListPublisher, ListSink
from stream_app.testing.redis_local import LocalRedis
from stream_app.wiring import Outputs, Wiring, default_wiring


class StagedKeywordClassifier:
    """A `StagedClassifier` that stands in for `load_classifier` in `default_wiring`."""

    info = ModelInfo("fake", "0", "cpu", "fp32")

    def __init__(self, *args: object, **kwargs: object) -> None:
        return None

    def tokenize(self, texts: Sequence[str], /) -> list[str]:
        return list(texts)

    def forward(self, encoded: list[str], /) -> list[str]:
        return encoded

    def postprocess(self, count: int, outputs: list[str], /) -> list[Sentiment]:
        return KeywordClassifier().classify(outputs)


class Recorder:
    """A runner or sink that records its lifecycle calls."""

    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    async def start(self) -> None:
        self.calls.append(f"{self.name}.start")

    async def write(self, batch: Sequence[object]) -> None:
        self.calls.append(f"{self.name}.write")

    async def flush(self) -> None:
        self.calls.append(f"{self.name}.flush")

    async def stop(self) -> None:
        self.calls.append(f"{self.name}.stop")
        if self.fail:
            raise RuntimeError(f"{self.name} would not stop")


async def test_stop_stops_the_runner_then_flushes_and_stops_sinks_even_when_one_fails() -> None:
    calls: list[str] = []
    wiring = Wiring(
        processor=None,  # type: ignore[arg-type]
        runner=Recorder("runner", calls, fail=True),
        sinks=[Recorder("store", calls), Recorder("fanout", calls, fail=True)],
    )
    await wiring.start()
    assert calls == ["store.start", "fanout.start", "runner.start"]
    await wiring.stop()
    assert calls[3:] == ["runner.stop", "fanout.flush", "fanout.stop", "store.flush", "store.stop"]


async def test_default_wiring_stop_closes_what_start_opened(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(wiring_module, "load_classifier", StagedKeywordClassifier)
    with LocalRedis() as redis_server:  # the store loads its fences and scripts at start
        await _default_wiring_round_trip(monkeypatch, tmp_path, redis_server.url)


async def _default_wiring_round_trip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    settings = load_settings(data_dir=tmp_path, alertmanager_url="http://127.0.0.1:9", redis_url=redis_url)
    topics = ListPublisher()
    outputs = Outputs(topics.scored_sink, topics.dead_sink, ListSink())
    wiring = default_wiring(settings, outputs, PipelineMetrics(CollectorRegistry()))
    fanouts = [s for s in wiring.sinks if isinstance(s, wiring_module.Fanout)]
    assert wiring.runner is not None and wiring.store is not None and len(fanouts) == 1
    closed: list[str] = []
    close_store = wiring.store.close  # type: ignore[attr-defined]

    async def spy_close() -> None:
        closed.append("redis")
        await close_store()

    monkeypatch.setattr(wiring.store, "close", spy_close)
    await wiring.start()
    runner, fanout = wiring.runner, fanouts[0]
    assert isinstance(runner, wiring_module.InferenceRunner)
    assert [s.label for s in await runner.classify_batch(["good", "bad"])] == ["positive", "negative"]
    assert len(fanout.tasks) == 1 and topics.scored_sink.started and topics.dead_sink.started
    await wiring.stop()
    assert all(task.done() for task in runner._tasks) and runner._forward_pool._shutdown
    assert all(task.done() for task in fanout.tasks)
    assert topics.scored_sink.stopped and topics.dead_sink.stopped
    assert "redis" in closed
