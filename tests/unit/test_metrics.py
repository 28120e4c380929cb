"""Metrics on a fresh registry per test: the processor and runner report into them."""

from __future__ import annotations

import time

import orjson
import pytest
from prometheus_client import CollectorRegistry

from exporters.prometheus import PipelineMetrics
from stream_app.pipeline.process import BatchProcessor, RawRecord
from tests.support.fakes import KeywordClassifier, ListPublisher, MemoryCountsSink


def _value(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _batch() -> list[RawRecord]:
    post = orjson.dumps({"id": "p", "text": "bad", "created_at": "2026-01-01T00:00:00Z", "platform": "x"})
    now = time.monotonic()
    return [RawRecord("posts", 0, 0, post, now), RawRecord("posts", 0, 1, b"\xff", now)]


async def test_batch_dead_letters_redis_write_and_event_age_are_observed():
    metrics = PipelineMetrics(CollectorRegistry())
    processor = BatchProcessor(
        KeywordClassifier(), ListPublisher(), MemoryCountsSink(), {"posts": "post"}, "m", "1", observer=metrics
    )
    await processor.process(_batch())
    assert _value(metrics, "sm_dead_letters_total", reason="bad_utf8") == 1
    assert _value(metrics, "sm_batch_size_count") == 1 and _value(metrics, "sm_batch_size_sum") == 2
    assert _value(metrics, "sm_redis_write_seconds_count") == 1
    assert _value(metrics, "sm_event_to_aggregate_seconds_count") == 1
    assert _value(metrics, "sm_event_to_aggregate_seconds_sum") > 86400  # an event from 2026-01-01


async def test_failed_redis_write_is_counted_and_raised():
    class BrokenSink(MemoryCountsSink):
        async def apply(self, records):  # type: ignore[no-untyped-def]
            raise ConnectionError("redis down")

    metrics = PipelineMetrics(CollectorRegistry())
    processor = BatchProcessor(
        KeywordClassifier(), ListPublisher(), BrokenSink(), {"posts": "post"}, "m", "1", observer=metrics
    )
    with pytest.raises(ConnectionError):
        await processor.process(_batch())
    assert _value(metrics, "sm_redis_write_errors_total") == 1


async def test_runner_reports_stage_timings(model_dir):
    from stream_app.engine.onnx_classifier import OnnxClassifier
    from stream_app.engine.runner import InferenceRunner

    metrics = PipelineMetrics(CollectorRegistry())
    runner = InferenceRunner(OnnxClassifier(model_dir, provider="cpu"), on_stage=metrics.stage_done)
    await runner.start()
    try:
        await runner.classify_batch(["one", "two"])
    finally:
        await runner.stop()
    assert _value(metrics, "sm_inference_stage_seconds_count", stage="tokenize") == 1
    assert _value(metrics, "sm_inference_stage_seconds_count", stage="forward") == 1


def test_metric_names_follow_conventions():
    metrics = PipelineMetrics(CollectorRegistry())
    for family in metrics.registry.collect():
        assert family.name.startswith("sm_")
        if family.type == "counter":
            assert not family.name.endswith("_total")  # the client appends _total to counter samples
