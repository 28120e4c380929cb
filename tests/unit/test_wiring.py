"""The worker's lifecycle: `Wiring.start()` starts the runner and the alert fan-out once, and
`Wiring.stop()` closes the runner, the fan-out and the Redis connection, even when one step fails."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

import stream_app.wiring as wiring_module
from exporters.prometheus.metrics import PipelineMetrics
from schemas.models import Alert
from stream_app.engine.types import ModelInfo, Sentiment
from stream_app.settings import load_settings
from stream_app.testing.fakes import KeywordClassifier, ListPublisher
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


class NoAlerts:
    async def publish(self, alert: Alert) -> None:
        return None


class Recorder:
    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    async def start(self) -> None:
        self.calls.append(f"{self.name}.start")

    async def stop(self) -> None:
        self.calls.append(f"{self.name}.stop")
        if self.fail:
            raise RuntimeError(f"{self.name} would not stop")

    async def close(self) -> None:
        self.calls.append(f"{self.name}.close")


class SyncStartRecorder(Recorder):
    def start(self) -> None:  # type: ignore[override]
        self.calls.append(f"{self.name}.start")


async def test_stop_closes_runner_fanout_and_connections_even_when_one_fails() -> None:
    calls: list[str] = []
    wiring = Wiring(
        processor=None,  # type: ignore[arg-type]
        runner=Recorder("runner", calls, fail=True),
        fanout=SyncStartRecorder("fanout", calls),
        connections=[Recorder("redis", calls)],
    )
    await wiring.start()
    assert calls == ["runner.start", "fanout.start"]
    await wiring.stop()
    assert calls[2:] == ["fanout.stop", "runner.stop", "redis.close"]


async def test_default_wiring_stop_closes_what_start_opened(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(wiring_module, "load_classifier", StagedKeywordClassifier)
    settings = load_settings(data_dir=tmp_path, alertmanager_url="http://127.0.0.1:9")
    wiring = default_wiring(settings, Outputs(ListPublisher(), NoAlerts()), PipelineMetrics(CollectorRegistry()))
    assert wiring.runner is not None and wiring.fanout is not None and wiring.store is not None
    closed: list[str] = []
    close_store = wiring.store.close

    async def spy_close() -> None:
        closed.append("redis")
        await close_store()

    monkeypatch.setattr(wiring.store, "close", spy_close)
    await wiring.start()
    await wiring.start()  # a second start adds no second set of sink tasks
    runner, fanout = wiring.runner, wiring.fanout
    assert isinstance(runner, wiring_module.InferenceRunner) and isinstance(fanout, wiring_module.Fanout)
    assert [s.label for s in await runner.classify_batch(["good", "bad"])] == ["positive", "negative"]
    assert len(fanout.tasks) == 1
    await wiring.stop()
    assert all(task.done() for task in runner._tasks) and runner._forward_pool._shutdown
    assert all(task.done() for task in fanout.tasks)
    assert closed == ["redis"]
