"""The one place where the worker's objects are built from Settings, and closed again.

The stream edge (`stream_app.ingest.app`) hands in its publishers and calls `start()` once the
event loop runs and `stop()` at shutdown; tests pass their own `Wiring` with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporters.alerts_http.notifiers import AlertmanagerNotifier, Fanout, Notifier, WebhookNotifier, default_retrying
from exporters.entity_gauges import WatchListCollector
from exporters.prometheus import PipelineMetrics
from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.alert_state import RedisAlertState, RedisPostSamples
from exporters.redis.connection import connect
from schemas.models import ScoredEvent
from stream_app.alerting.detector import DetectorParams
from stream_app.alerting.service import AlertPublisher, AlertService
from stream_app.engine.calibration import Calibration
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.swap import ModelSwapper, info_labels, load_classifier
from stream_app.ingest.health import DependencyHealth
from stream_app.ingest.resilience import RetryingSink
from stream_app.pipeline.entities import EntityExtractor, WatchList, entity_words
from stream_app.pipeline.lookup import alias_table
from stream_app.pipeline.ports import AggregateStore
from stream_app.pipeline.process import BatchProcessor, Prepared, Publisher, RawRecord
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.pipeline.windows import EntityAdmission
from stream_app.settings import Settings

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


class Sinks(Protocol):
    """The alert fan-out's lifecycle (`Fanout`)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Outputs:
    """What the stream edge publishes to: scored events and dead letters, and alerts."""

    batches: Publisher
    alerts: AlertPublisher


@dataclass
class Wiring:
    """What the agent needs. `start()` starts what runs in the background; `stop()` closes it
    and every connection, each step on its own so one failure does not leak the rest."""

    processor: Processor
    runner: Runner | None = None
    store: AggregateStore | None = None
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    alerts: AlertService | None = None
    alert_state: RedisAlertState | None = None
    fanout: Sinks | None = None
    watchlist: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # folded alias -> entity, for lookups
    connections: list[Closable] = field(default_factory=list)
    swapper: ModelSwapper | None = None

    async def start(self) -> None:
        if self.runner is not None:
            await self.runner.start()
        if self.fanout is not None:
            self.fanout.start()

    async def stop(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.fanout is not None:
            steps.append(("alert fan-out", self.fanout.stop))
        if self.runner is not None:
            steps.append(("inference runner", self.runner.stop))
        steps += [("connection", connection.close) for connection in self.connections]
        for what, step in steps:
            try:
                await step()
            except Exception:  # shutdown carries on: the other resources still need closing
                log.exception("could not stop the %s", what)


WiringFactory = Callable[[Settings, Outputs, PipelineMetrics], Wiring]


def alert_fanout(settings: Settings, metrics: PipelineMetrics) -> Fanout:
    """The alert sinks beyond Kafka: webhook and Alertmanager, when configured."""
    notifiers: list[Notifier] = []
    if settings.alert_webhook_url is not None:
        notifiers.append(WebhookNotifier(settings.alert_webhook_url.get_secret_value(), settings.alert_sink_timeout_s))
    if settings.alertmanager_url:
        notifiers.append(AlertmanagerNotifier(settings.alertmanager_url, settings.alert_sink_timeout_s))
    return Fanout(notifiers, metrics, lambda: default_retrying(settings.alert_sink_attempts))


def alerting(
    settings: Settings,
    store: RedisAggregateStore,
    samples: RedisPostSamples,
    watch: WatchList,
    publisher: AlertPublisher,
    metrics: PipelineMetrics,
) -> tuple[AlertService, RedisAlertState, Fanout]:
    """The detector service and its sinks: Kafka always, webhook and Alertmanager when configured."""
    fanout = alert_fanout(settings, metrics)
    state = RedisAlertState(store.client, store.keys, settings.alert_leader_ttl_s)
    params = detector_params(settings, Calibration.load(settings.model_dir).label_floor)
    service = AlertService(
        counts=store,
        state=state,
        posts=samples,
        publisher=publisher,
        sinks=fanout,
        params=params,
        overrides={e.name: params.with_overrides(e.overrides) for e in watch.entities if e.overrides},
        watchlist=frozenset(watch.names()),
        entity_words={e.name: entity_words(e) for e in watch.entities},
        idle_s=settings.alert_idle_s,
        settle_s=settings.alert_settle_s,
        history_min=settings.alert_history_min,
        dashboard_url=settings.dashboard_url or f"http://{settings.api_host}:{settings.api_port}/dashboard",
        observer=metrics,
    )
    return service, state, fanout


def detector_params(settings: Settings, model_label_floor: float = 0.0) -> DetectorParams:
    """`model_label_floor`: the scoring model's `label_floor` (its calibration.json), used
    unless SM_ALERT_LABEL_FLOOR overrides it; 0 for labels given (gold)."""
    floor = model_label_floor if settings.alert_label_floor is None else settings.alert_label_floor
    return DetectorParams(
        label_floor=floor,
        short_window_min=settings.alert_short_window_min,
        min_volume=settings.alert_min_volume,
        confirm_windows_min=settings.alert_confirm_windows_min,
        min_negatives=settings.alert_min_negatives,
        threshold_volume_slope=settings.alert_threshold_volume_slope,
        min_abs_increase=settings.alert_min_abs_increase,
        spike_ratio=settings.alert_spike_ratio,
        cusum_threshold=settings.alert_cusum_threshold,
        confirm_minutes=settings.alert_confirm_min,
        resolve_abs_increase=settings.alert_resolve_abs_increase,
        cooldown_min=settings.alert_cooldown_min,
        baseline_half_life_min=settings.alert_baseline_half_life_min,
        min_baseline_posts=settings.alert_min_baseline_posts,
        critical_ratio=settings.alert_critical_ratio,
    )


def redis_store(settings: Settings) -> RedisAggregateStore:
    return RedisAggregateStore(
        connect(settings.redis_url.get_secret_value()),
        prefix=settings.redis_prefix,
        shards=settings.redis_shards,
        retention_s=settings.redis_retention_s,
        minute_retention_s=settings.redis_minute_retention_s,
        allowed_lateness_s=settings.allowed_lateness_s,
    )


def default_wiring(settings: Settings, outputs: Outputs, metrics: PipelineMetrics) -> Wiring:
    """The real thing: ONNX model behind the async runner, Redis store, Kafka publishers."""
    watch = WatchList.load(settings.watchlist) if settings.watchlist else WatchList([])  # fails before the model loads
    classifier = load_classifier(settings)  # SM_MODEL_DIR=null: is the bench-only null model
    runner = InferenceRunner(classifier, settings.inference_queue_depth, on_stage=metrics.stage_done)
    store = redis_store(settings)
    admission = EntityAdmission(watch.names(), settings.max_dynamic_entities, settings.entity_min_mentions)
    metrics.track_admission(admission)
    metrics.track_store(store)
    collector = WatchListCollector(watch.names())
    metrics.registry.register(collector)
    metrics.model.info(info_labels(classifier.info, settings.model_dir))
    samples = RedisPostSamples(store.client, store.keys, settings.redis_retention_s)
    processor = BatchProcessor(
        classifier=runner,
        publisher=outputs.batches,
        sink=RetryingSink(store, on_retry=metrics.aggregates_failed),
        kinds={settings.topic_posts: "post", settings.topic_reviews: "review"},
        model_name=classifier.info.name,
        model_version=classifier.info.version,
        max_text_chars=settings.max_text_chars,
        observer=metrics,
        extractor=EntityExtractor(watch),
        admission=admission,
        samples=samples if settings.alerts_enabled else None,
        bounds=EventTimeBounds(settings.event_max_future_s, settings.event_max_age_s),
        max_payload_bytes=settings.max_payload_bytes,
        dead_letter_max_original_bytes=settings.dead_letter_max_original_bytes,
    )
    # One Redis client serves the store, the post samples and the alert state: closing the store closes it.
    wiring = Wiring(
        processor=processor,
        runner=runner,
        store=store,
        watchlist=sorted(watch.names()),
        aliases=alias_table(watch),
        connections=[store],
    )
    if settings.alerts_enabled:
        wiring.alerts, wiring.alert_state, wiring.fanout = alerting(
            settings, store, samples, watch, outputs.alerts, metrics
        )
    wiring.refresh_metrics = lambda: collector.refresh(store, wiring.alert_state)
    wiring.swapper = ModelSwapper(
        runner,
        lambda model_dir: load_classifier(settings, model_dir),
        settings.model_dir,
        metrics.registry,
        on_active=lambda info, model_dir: metrics.model.info(info_labels(info, model_dir)),
    )
    return wiring


async def serve_api(settings: Settings, stop: asyncio.Event) -> None:
    """The API process: queries, alerts and the live page over Redis, until `stop` is set.
    Builds everything it serves here and closes it on the way out."""
    from exporters.api_metrics import ApiMetrics
    from stream_app.web.routes import ROUTES, Site
    from stream_app.web.server import build_app, serve

    watch = WatchList.load(settings.watchlist) if settings.watchlist else WatchList([])
    store = redis_store(settings)
    state = RedisAlertState(store.client, store.keys, settings.alert_leader_ttl_s)
    health = DependencyHealth(store.client, kafka_bootstrap="")
    await health.probe_redis()
    metrics = ApiMetrics()
    site = Site(
        store=store,
        alert_state=state if settings.alerts_enabled else None,
        watchlist=sorted(watch.names()),
        ready=lambda: health.redis_up,
        render_metrics=metrics.render,
        dependencies=lambda: {"redis": health.redis_up},
        aliases=alias_table(watch),
        token=settings.web_token is not None,
        routes=ROUTES,
    )
    app = build_app(
        site,
        ROUTES,
        settings.api_host,
        settings.web_allowed_hosts.split(","),
        settings.dashboard_url,
        settings.web_token.get_secret_value() if settings.web_token else None,
        [metrics.middleware()],
    )
    runner = await serve(app, settings.api_host, settings.api_port)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except TimeoutError:
                await health.probe_redis()
    finally:
        await runner.cleanup()
        await store.close()


def run_api(settings: Settings) -> None:
    """Blocks until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_api(settings, stop)

    asyncio.run(main())


async def rebuild_aggregates(
    settings: Settings, progress: Callable[[int, int], None] | None = None, batch_size: int = 500
) -> tuple[int, int]:
    """Recompute the aggregates from the scored-events (and dead-letters) topics through the
    store's write path (`stream_app.pipeline.rebuild`). Returns (records read, records applied)."""
    from stream_app.ingest.kafka_admin import read_all
    from stream_app.pipeline.rebuild import batches, by_origin, counted_record, dead_record

    read = [r for r in map(counted_record, read_all(settings, settings.topic_scored)) if r is not None]
    read += [dead_record(d) for d in read_all(settings, settings.topic_dead_letter)]
    partitions = by_origin(read)
    total = sum(len(records) for records in partitions.values())
    store = redis_store(settings)
    applied = done = 0
    try:
        for batch in batches(partitions, batch_size):
            applied += await store.apply(batch)
            done += len(batch)
            if progress is not None:
                progress(done, total)
    finally:
        await store.close()
    return len(read), applied
