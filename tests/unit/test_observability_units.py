"""Observability pieces without services: pipeline metrics on a fresh registry per test (the processor
and runner report into them), the scrape-time collector, the overview API, JSON logs, and the post
samples that explain alerts."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exporters.prometheus.entity_gauges import WatchListCollector
from exporters.prometheus.metrics import PipelineMetrics
from stream_app.cli import setup_logging
from stream_app.pipeline.counts import Counts, minute_of
from stream_app.pipeline.entities import EntityExtractor, WatchEntity, WatchList
from stream_app.pipeline.process import RawRecord
from stream_app.pipeline.queries import entity_overview, entity_series, entity_window
from stream_app.pipeline.samples import PostSample
from stream_app.settings import load_settings
from stream_app.testing.fakes import ListSink, MemoryCountsSink, MinuteStore, make_processor
from stream_app.testing.memory import MemoryAggregateStore
from stream_app.web.api import authorized, get_overview


class ActiveAlerts:
    async def active(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(entity="Veltro Motors", severity="critical")]


async def test_collector_reads_windows_and_firing_alerts_at_scrape_time() -> None:
    store = MinuteStore({"ent:Veltro Motors": Counts.of(3, 1, 0, -2.0)})
    collector = WatchListCollector(["Veltro Motors", "Quanta Bank"])
    registry = CollectorRegistry()
    registry.register(collector)
    await collector.refresh(store, ActiveAlerts())  # type: ignore[arg-type]
    value = registry.get_sample_value
    assert value("sm_entity_negative_share", {"entity": "Veltro Motors", "window": "5m"}) == 0.75
    assert value("sm_entity_volume", {"entity": "Veltro Motors", "window": "1h"}) == 240
    assert value("sm_entity_volume", {"entity": "Quanta Bank", "window": "1m"}) == 0
    assert value("sm_alert_active", {"entity": "Veltro Motors", "severity": "critical"}) == 1
    assert value("sm_alert_active", {"entity": "Quanta Bank", "severity": "critical"}) is None


async def test_overview_returns_watch_list_figures_and_series() -> None:
    store = MinuteStore({"ent:Veltro Motors": Counts.of(1, 1, 2, 0.5), "ent:Other": Counts.of(0, 9, 0, 0.0)})
    status, body = await get_overview(store, ["Veltro Motors"], {"minutes": "10"})  # type: ignore[arg-type]
    assert status == 200 and [e["entity"] for e in body["entities"]] == ["Veltro Motors"]
    row = body["entities"][0]
    assert row["volume"] == 20 and row["negative_share"] == 0.25 and len(row["series"]) == 11
    status, body = await get_overview(store, [], {})  # type: ignore[arg-type]
    assert [e["entity"] for e in body["entities"]] == ["Other", "Veltro Motors"]  # busiest first
    assert (await get_overview(store, [], {"minutes": "0"}))[0] == 400  # type: ignore[arg-type]


def test_json_logs_are_one_object_per_line_with_masked_secrets(capsys) -> None:  # type: ignore[no-untyped-def]
    setup_logging("INFO", as_json=True)
    config = load_settings(redis_url="redis://:hunter2@127.0.0.1:6379/0", web_token="tok-42").masked()
    logging.getLogger("stream_app.test").info("effective config: %s", config, extra={"config": config})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "stream_app.test"
    assert record["config"]["redis_url"] == "**********" and "hunter2" not in line
    assert record["config"]["web_token"] == "**********" and "tok-42" not in line
    setup_logging("INFO", as_json=False)


class SampleRecorder(ListSink[tuple[str, PostSample]]):
    @property
    def samples(self) -> list[tuple[str, PostSample]]:
        return self.items


async def test_scored_posts_are_sampled_per_tracked_entity() -> None:
    recorder = SampleRecorder()
    watch = WatchList([WatchEntity("Veltro Motors", ("veltro",))])
    processor = make_processor(extractor=EntityExtractor(watch), samples=recorder)
    now = time.time()
    posts = [
        {"id": "a", "text": "veltro is bad", "created_at": now, "platform": "x"},
        {"id": "b", "text": "nothing to see", "created_at": now, "platform": "x"},
    ]
    batch = [RawRecord("posts", 0, i, orjson.dumps(p), time.monotonic()) for i, p in enumerate(posts)]
    batch.append(RawRecord("posts", 0, 2, b"{broken", time.monotonic()))
    await processor.process(batch)
    assert [(entity, s.id, s.label, s.source) for entity, s in recorder.samples] == [
        ("Veltro Motors", "a", "negative", "x")
    ]
    assert minute_of(recorder.samples[0][1].ts) == minute_of(now)


def test_token_guard_lets_probes_and_the_page_files_through_and_wants_the_bearer_token_elsewhere() -> None:
    token = "s3cret-token"
    for path in ("/healthz", "/readyz", "/dashboard", "/dashboard/dashboard.js"):
        assert authorized(token, path, {})
    for path in ("/metrics", "/overview", "/alerts", "/entities/Veltro Motors", "/dashboardx"):
        assert not authorized(token, path, {})
        assert not authorized(token, path, {"Authorization": "Bearer wrong"})
        assert not authorized(token, path, {"Authorization": f"Basic {token}"})
        assert not authorized(token, path, {"Authorization": token})
        assert authorized(token, path, {"Authorization": f"Bearer {token}"})
        assert authorized(token, path, {"Authorization": f"bearer {token}"})


class RecordedMinutes(MemoryAggregateStore):
    """Per-minute counts at absolute minutes of one key, counting reads."""

    def __init__(self, buckets: dict[int, Counts]) -> None:
        super().__init__()
        self.buckets = {("ent:E", m): c for m, c in buckets.items()}
        self.reads = 0

    async def minutes(self, key: str, first: int, last: int) -> dict[int, Counts]:
        self.reads += 1
        return await super().minutes(key, first, last)

    async def hours(self, key: str, first: int, last: int) -> dict[int, Counts]:
        self.reads += 1
        return await super().hours(key, first, last)


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), min_size=90, max_size=90),
    window=st.sampled_from(["1m", "5m", "15m", "1h"]),
    minutes=st.integers(5, 80),
)
async def test_overview_row_equals_the_window_and_series_queries(counts, window, minutes) -> None:  # type: ignore[no-untyped-def]
    now = 1_795_000_000.0
    last = minute_of(now)
    store = RecordedMinutes({last - 60 * i: Counts.of(n, u, p, 0.5 * (p - n)) for i, (n, u, p) in enumerate(counts)})
    store.clock = lambda: now
    row = await entity_overview(store, "E", window, minutes, now)  # type: ignore[arg-type]
    assert store.reads <= 4  # the window's edges and whole hours, and the series' minutes: not one per minute
    expected = await entity_window(store, "E", window, now=now)  # type: ignore[arg-type]
    series = await entity_series(store, "E", "1m", now - 60 * minutes, now=now)  # type: ignore[arg-type]
    assert {k: v for k, v in row.items() if k != "series"} == expected
    assert row["series"] == series["points"]


def _value(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _batch() -> list[RawRecord]:
    post = orjson.dumps({"id": "p", "text": "bad", "created_at": "2026-01-01T00:00:00Z", "platform": "x"})
    now = time.monotonic()
    return [RawRecord("posts", 0, 0, post, now), RawRecord("posts", 0, 1, b"\xff", now)]


async def test_batch_dead_letters_redis_write_and_event_age_are_observed():
    metrics = PipelineMetrics(CollectorRegistry())
    processor = make_processor(observer=metrics)
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
    processor = make_processor(store=BrokenSink(), observer=metrics)
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
