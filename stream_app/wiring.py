"""The one place where the worker's objects are built from Settings, and closed again.

The stream edge (`stream_app.ingest.app`) hands in its publishers and calls `start()` once the
event loop runs and `stop()` at shutdown; tests pass their own `Wiring` with fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporters.alert_state import RedisAlertState, RedisPostSamples
from exporters.entity_gauges import WatchListCollector
from exporters.notifiers import AlertmanagerNotifier, Fanout, Notifier, WebhookNotifier, default_retrying
from exporters.prometheus import PipelineMetrics
from exporters.redis_store import RedisAggregateStore, connect
from stream_app.alerting.service import AlertPublisher, AlertService
from stream_app.engine.calibration import Calibration
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.swap import ModelSwapper, info_labels, load_classifier
from stream_app.ingest.resilience import RetryingSink
from stream_app.pipeline.entities import EntityExtractor, WatchList, entity_words
from stream_app.pipeline.lookup import alias_table
from stream_app.pipeline.process import BatchProcessor, Publisher, RawRecord
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.pipeline.windows import EntityAdmission
from stream_app.settings import Settings

log = logging.getLogger(__name__)


class Processor(Protocol):
    async def prepare(self, batch: Sequence[RawRecord]) -> Any: ...

    async def commit(self, prepared: Any) -> Any: ...


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
    store: Any = None
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
    state = RedisAlertState(store.client, settings.redis_prefix, settings.alert_leader_ttl_s)
    params = settings.detector_params(Calibration.load(settings.model_dir).label_floor)
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
        dashboard_url=settings.dashboard_url or f"http://{settings.web_host}:{settings.web_port}/dashboard",
        observer=metrics,
    )
    return service, state, fanout


def redis_store(settings: Settings) -> RedisAggregateStore:
    return RedisAggregateStore(
        connect(settings.redis_url.get_secret_value()),
        prefix=settings.redis_prefix,
        retention_s=settings.redis_retention_s,
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
    samples = RedisPostSamples(store.client, settings.redis_prefix, settings.redis_retention_s)
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
