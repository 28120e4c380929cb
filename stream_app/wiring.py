"""The composition root: the one place that reads `Settings` and builds the objects from them.

Below it nothing imports `Settings` (tests/unit/test_import_rules.py checks it): the stream edge
gets a `StreamConfig` and a `Wiring`, the detector `DetectorParams`, the engine `LoadOptions`,
the sinks a `RetryPolicy`. What is started here is stopped here (`Wiring.stop`, `serve_api`).

- `run_worker`: a stream worker (the Faust edge in stream_app/ingest, everything else from here);
- `run_api`: the API process (queries, alerts, the live page);
- `rebuild_aggregates`, `create_topics`, `replay`: what the CLI does with the same settings.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from typing import Any

from exporters.alerts_http.notifiers import AlertmanagerNotifier, Fanout, Notifier, WebhookNotifier, default_retrying
from exporters.prometheus.entity_gauges import WatchListCollector
from exporters.prometheus.metrics import PipelineMetrics
from exporters.redis.aggregates import RedisAggregateStore
from exporters.redis.alert_state import RedisAlertState, RedisPostSamples
from exporters.redis.connection import TRANSIENT_ERRORS as REDIS_TRANSIENT
from exporters.redis.connection import connect
from stream_app.alerting.detector import DetectorParams
from stream_app.alerting.service import AlertService
from stream_app.engine.calibration import DomainCalibrations
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.staged import StagedClassifier
from stream_app.engine.swap import LoadOptions, ModelSwapper, info_labels, load_classifier
from stream_app.ingest import app as stream_edge
from stream_app.ingest import kafka_admin
from stream_app.ingest.health import OUTAGES, DependencyHealth
from stream_app.ingest.kafka_config import KafkaClientConfig, StreamConfig, Topics
from stream_app.ingest.parts import Outputs, Wiring
from stream_app.ingest.resilience import KAFKA_TRANSIENT
from stream_app.pipeline.entities import EntityExtractor, WatchList, entity_words
from stream_app.pipeline.lookup import alias_table
from stream_app.pipeline.process import BatchProcessor
from stream_app.pipeline.resilience import Retrying, RetryingStore, RetryPolicy
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.pipeline.windows import EntityAdmission
from stream_app.settings import Settings, load_settings
from stream_app.web.admin import swap_model

log = logging.getLogger(__name__)
__all__ = ["Wiring", "create_topics", "default_wiring", "detector_params", "redis_store", "run_api", "run_worker"]


# -- plain values from Settings ------------------------------------------------------------------


def kafka_config(settings: Settings) -> KafkaClientConfig:
    return KafkaClientConfig(
        bootstrap=tuple(s.strip() for s in settings.kafka_bootstrap.split(",")),
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
        ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        client_id=settings.app_id,
    )


def topics(settings: Settings) -> Topics:
    return Topics(
        posts=settings.topic_posts,
        reviews=settings.topic_reviews,
        scored=settings.topic_scored,
        dead_letter=settings.topic_dead_letter,
        alerts=settings.topic_alerts,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
    )


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        app_id=settings.app_id,
        kafka=kafka_config(settings),
        topics=topics(settings),
        data_dir=settings.data_dir,
        redis_url=settings.redis_url.get_secret_value(),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_allowed_hosts=tuple(settings.web_allowed_hosts.split(",")),
        dashboard_url=settings.dashboard_url,
        web_token=settings.web_token.get_secret_value() if settings.web_token else None,
        session_timeout_s=settings.kafka_session_timeout_s,
        group_instance_id=settings.kafka_group_instance_id,
        max_message_bytes=settings.kafka_max_message_bytes,
        batch_max_size=settings.batch_max_size,
        batch_max_wait_s=settings.batch_max_wait_s,
        alert_tick_s=settings.alert_tick_s,
        lag_interval_s=settings.lag_interval_s,
        startup_wait_s=settings.startup_wait_s,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        log_level=settings.log_level,
        effective=settings.masked(),
        reload_model_dir=lambda: load_settings().model_dir,
    )


def load_options(settings: Settings) -> LoadOptions:
    return LoadOptions(
        settings.provider, settings.intra_op_threads, settings.max_length, settings.ort_spin, settings.long_text
    )


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


def dependency_of(exc: BaseException) -> str | None:
    """Which dependency a transient error came from: the adapters' error types say so."""
    if isinstance(exc, REDIS_TRANSIENT):
        return "redis"
    if isinstance(exc, KAFKA_TRANSIENT):
        return "kafka"
    return None


def retry_policy(metrics: PipelineMetrics | None = None) -> RetryPolicy:
    """Redis and Kafka connection errors, timeouts and `OSError`s block and retry; the worker's
    retries go to its outage tracker (one warning per outage) and its metrics."""

    def on_retry(dependency: str | None) -> None:
        if metrics is not None and dependency == "redis":
            metrics.aggregates_failed()

    return RetryPolicy(
        transient=(*REDIS_TRANSIENT, *KAFKA_TRANSIENT, OSError, TimeoutError),
        dependency_of=dependency_of,
        reporter=OUTAGES,
        on_retry=on_retry,
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


# -- the worker ----------------------------------------------------------------------------------


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
    outputs: Outputs,
    metrics: PipelineMetrics,
) -> tuple[AlertService, RedisAlertState, Fanout]:
    """The detector service and its sinks: Kafka always, webhook and Alertmanager when configured.
    Each entity is judged with the label floor of the head that scores it (the model's
    calibration), unless SM_ALERT_LABEL_FLOOR sets one floor by hand."""
    fanout = alert_fanout(settings, metrics)
    state = RedisAlertState(store.client, store.keys, settings.alert_leader_ttl_s)
    floors = DomainCalibrations.load(settings.model_dir).label_floors()
    params = detector_params(settings, floors.get("social", 0.0))
    service = AlertService(
        counts=store,
        state=state,
        posts=samples,
        publisher=Retrying(outputs.alerts, "kafka alert publish", retry_policy(metrics)),
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
        resend=fanout.only("alertmanager"),
        label_floors=floors if settings.alert_label_floor is None else None,
        entity_domains=watch.domains(),
    )
    return service, state, fanout


def default_wiring(settings: Settings, outputs: Outputs, metrics: PipelineMetrics) -> Wiring:
    """The real thing: the ONNX model behind the async runner, the Redis store, Kafka topics."""
    watch = WatchList.load(settings.watchlist) if settings.watchlist else WatchList([])  # fails before the model loads
    options = load_options(settings)
    classifier = load_classifier(settings.model_dir, options)  # SM_MODEL_DIR=null: is the bench-only null model
    runner = InferenceRunner(classifier, settings.inference_queue_depth, on_stage=metrics.stage_done)
    store = redis_store(settings)
    policy = retry_policy(metrics)
    admission = EntityAdmission(watch.names(), settings.max_dynamic_entities, settings.entity_min_mentions)
    metrics.track_admission(admission)
    metrics.track_store(store)
    collector = WatchListCollector(watch.names())
    metrics.registry.register(collector)
    metrics.model.info(info_labels(classifier.info, settings.model_dir))
    samples = RedisPostSamples(store.client, store.keys, settings.redis_retention_s)
    processor = BatchProcessor(
        classifier=runner,
        scored=Retrying(outputs.scored, "kafka publish", policy),
        dead=Retrying(outputs.dead, "kafka publish", policy),
        store=RetryingStore(store, policy),
        kinds={settings.topic_posts: "post", settings.topic_reviews: "review"},
        max_text_chars=settings.max_text_chars,
        observer=metrics,
        extractor=EntityExtractor(watch),
        admission=admission,
        samples=samples if settings.alerts_enabled else None,
        bounds=EventTimeBounds(settings.event_max_future_s, settings.event_max_age_s),
        max_payload_bytes=settings.max_payload_bytes,
        dead_letter_max_original_bytes=settings.dead_letter_max_original_bytes,
        finance_entities=frozenset(e for e, d in watch.domains().items() if d == "finance"),
    )
    wiring = Wiring(
        processor=processor,
        runner=runner,
        store=store,
        # Started in this order, stopped in reverse: the store's client is shared with the samples
        # and the alert state, so it is stopped last.
        sinks=[store, samples, outputs.scored, outputs.dead, outputs.alerts],
        watchlist=sorted(watch.names()),
        aliases=alias_table(watch),
        retry=policy,
    )
    if settings.alerts_enabled:
        wiring.alerts, state, fanout = alerting(settings, store, samples, watch, outputs, metrics)
        wiring.alert_state = state
        wiring.sinks.append(fanout)
    wiring.refresh_metrics = lambda: collector.refresh(store, wiring.alert_state)

    def activated(model: StagedClassifier, model_dir: Any) -> None:
        metrics.model.info(info_labels(model.info, model_dir))
        if wiring.alerts is not None:
            wiring.alerts.set_label_floors(model.label_floors())

    swapper = ModelSwapper(
        runner, lambda model_dir: load_classifier(model_dir, options), settings.model_dir, metrics, activated
    )
    wiring.reloader = swapper
    wiring.swap_model = lambda body: swap_model(swapper, body)
    return wiring


def run_worker(settings: Settings) -> None:
    """A stream worker; blocks until it is stopped (SIGINT/SIGTERM)."""
    stream_edge.run_worker(stream_config(settings), lambda outputs, metrics: default_wiring(settings, outputs, metrics))


# -- the API process -----------------------------------------------------------------------------


async def serve_api(settings: Settings, stop: asyncio.Event) -> None:
    """The API process: queries, alerts and the live page over Redis, until `stop` is set.
    Builds everything it serves here and closes it on the way out."""
    from exporters.prometheus.api import ApiMetrics
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


# -- commands over the same settings -------------------------------------------------------------


def create_topics(settings: Settings) -> dict[str, str]:
    return kafka_admin.create_topics(kafka_config(settings), topics(settings))


def replay(
    settings: Settings,
    items: Iterable[tuple[str, dict[str, Any] | bytes]],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    return kafka_admin.replay(kafka_config(settings), items, rate, progress)


async def rebuild_aggregates(
    settings: Settings, progress: Callable[[int, int], None] | None = None, batch_size: int = 500
) -> tuple[int, int]:
    """Recompute the aggregates from the scored-events (and dead-letters) topics through the
    store's write path (`stream_app.pipeline.rebuild`). Returns (records read, records applied)."""
    from stream_app.pipeline.rebuild import batches, by_origin, counted_record, dead_record

    kafka = kafka_config(settings)
    read = [r for r in map(counted_record, kafka_admin.read_all(kafka, settings.topic_scored)) if r is not None]
    read += [dead_record(d) for d in kafka_admin.read_all(kafka, settings.topic_dead_letter)]
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
