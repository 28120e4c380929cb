"""The Faust edge: the only module that imports faust.

It wires the input topics to `BatchProcessor` and the web server to read-only views.
Swapping the stream layer means rewriting this file and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
from aiohttp import web as aioweb

from exporters.alert_state import RedisAlertState, RedisPostSamples
from exporters.redis_store import RedisAggregateStore, connect
from schemas.models import Alert, DeadLetter, ScoredEvent
from stream_app import http_api
from stream_app.alerting.notifiers import (
    AlertmanagerNotifier,
    Fanout,
    Notifier,
    WebhookNotifier,
    default_retrying,
)
from stream_app.alerting.service import AlertService
from stream_app.engine.runner import InferenceRunner
from stream_app.engine.swap import ModelSwapper, info_labels, load_classifier
from stream_app.metrics import PipelineMetrics
from stream_app.pipeline.entities import EntityExtractor, WatchList, entity_words
from stream_app.pipeline.process import BatchProcessor, RawRecord
from stream_app.pipeline.windows import EntityAdmission
from stream_app.sentiment_collector import WatchListCollector
from stream_app.settings import Settings, load_settings
from stream_app.web_pages import static_file, token_guard

log = logging.getLogger(__name__)


def _broker_credentials(settings: Settings) -> Any:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    import ssl

    context = None
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


class FaustPublisher:
    """Implements `Publisher`: sends, then waits until the broker acknowledged every record."""

    def __init__(self, scored_topic: Any, dead_topic: Any, metrics: PipelineMetrics) -> None:
        self.scored_topic = scored_topic
        self.dead_topic = dead_topic
        self.metrics = metrics

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        pending = []
        for event in scored:
            pending.append(await self.scored_topic.send(key=event.id.encode(), value=event.model_dump_json().encode()))
        for letter in dead:
            pending.append(
                await self.dead_topic.send(
                    key=f"{letter.topic}:{letter.partition}:{letter.offset}".encode(),
                    value=letter.model_dump_json().encode(),
                )
            )
        if pending:
            await asyncio.gather(*pending)
        self.metrics.messages_out.labels(topic=self.scored_topic.get_topic_name()).inc(len(scored))
        self.metrics.messages_out.labels(topic=self.dead_topic.get_topic_name()).inc(len(dead))


class FaustAlertPublisher:
    """Implements `AlertPublisher`: keyed by entity, so one entity's alerts stay in order."""

    def __init__(self, topic: Any, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics

    async def publish(self, alert: Alert) -> None:
        await (await self.topic.send(key=alert.entity.encode(), value=alert.model_dump_json().encode()))
        self.metrics.messages_out.labels(topic=self.topic.get_topic_name()).inc()


@dataclass(frozen=True)
class Topics:
    scored: Any
    dead: Any
    alerts: Any


class Processor(Protocol):
    async def prepare(self, batch: Sequence[RawRecord]) -> Any: ...

    async def commit(self, prepared: Any) -> Any: ...


@dataclass
class Wiring:
    """What the agent needs, built once the app's topics exist; tests inject fakes."""

    processor: Processor
    start: Callable[[], Awaitable[None]]
    store: Any = None
    refresh_metrics: Callable[[], Awaitable[None]] | None = None
    alerts: AlertService | None = None
    alert_state: RedisAlertState | None = None
    fanout: Fanout | None = None
    watchlist: list[str] = field(default_factory=list)
    swapper: ModelSwapper | None = None


def alerting(
    settings: Settings,
    store: RedisAggregateStore,
    samples: RedisPostSamples,
    watch: WatchList,
    topic: Any,
    metrics: PipelineMetrics,
) -> tuple[AlertService, RedisAlertState, Fanout]:
    """The detector service and its sinks: Kafka always, webhook and Alertmanager when configured."""
    notifiers: list[Notifier] = []
    if settings.alert_webhook_url is not None:
        notifiers.append(WebhookNotifier(settings.alert_webhook_url.get_secret_value(), settings.alert_sink_timeout_s))
    if settings.alertmanager_url:
        notifiers.append(AlertmanagerNotifier(settings.alertmanager_url, settings.alert_sink_timeout_s))
    fanout = Fanout(notifiers, metrics, lambda: default_retrying(settings.alert_sink_attempts))
    state = RedisAlertState(store.client, settings.redis_prefix, settings.alert_leader_ttl_s)
    params = settings.detector_params()
    service = AlertService(
        counts=store,
        state=state,
        posts=samples,
        publisher=FaustAlertPublisher(topic, metrics),
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


def default_wiring(settings: Settings, topics: Topics, metrics: PipelineMetrics) -> Wiring:
    """The real thing: ONNX model behind the async runner, Redis store, Kafka publisher."""
    classifier = load_classifier(settings)  # SM_MODEL_DIR=null: is the bench-only null model
    runner = InferenceRunner(classifier, settings.inference_queue_depth, on_stage=metrics.stage_done)
    store = RedisAggregateStore(
        connect(settings.redis_url.get_secret_value()),
        prefix=settings.redis_prefix,
        retention_s=settings.redis_retention_s,
        allowed_lateness_s=settings.allowed_lateness_s,
    )
    watch = WatchList.load(settings.watchlist) if settings.watchlist else WatchList([])
    admission = EntityAdmission(watch.names(), settings.max_dynamic_entities, settings.entity_min_mentions)
    metrics.track_admission(admission)
    metrics.track_store(store)
    collector = WatchListCollector(watch.names())
    metrics.registry.register(collector)
    metrics.model.info(info_labels(classifier.info, settings.model_dir))
    samples = RedisPostSamples(store.client, settings.redis_prefix, settings.redis_retention_s)
    processor = BatchProcessor(
        classifier=runner,
        publisher=FaustPublisher(topics.scored, topics.dead, metrics),
        sink=store,
        kinds={settings.topic_posts: "post", settings.topic_reviews: "review"},
        model_name=classifier.info.name,
        model_version=classifier.info.version,
        max_text_chars=settings.max_text_chars,
        observer=metrics,
        extractor=EntityExtractor(watch),
        admission=admission,
        samples=samples if settings.alerts_enabled else None,
    )
    wiring = Wiring(processor=processor, start=runner.start, store=store, watchlist=sorted(watch.names()))
    wiring.swapper = ModelSwapper(
        runner,
        lambda model_dir: load_classifier(settings, model_dir),
        settings.model_dir,
        metrics.registry,
        on_active=lambda info, model_dir: metrics.model.info(info_labels(info, model_dir)),
    )
    if settings.alerts_enabled:
        wiring.alerts, wiring.alert_state, wiring.fanout = alerting(
            settings, store, samples, watch, topics.alerts, metrics
        )
    wiring.refresh_metrics = lambda: collector.refresh(store, wiring.alert_state)
    return wiring


WiringFactory = Callable[[Settings, Topics, PipelineMetrics], Wiring]


def build_app(settings: Settings, wiring_factory: WiringFactory = default_wiring) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap.split(",")],
        broker_credentials=_broker_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=False,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_session_timeout_s / 5,
        broker_commit_every=200,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_max_size * 4),
        producer_linger=0.005,
        web_application_options={"middlewares": [token_guard(settings.web_token.get_secret_value())]}
        if settings.web_token
        else {},
    )
    metrics = PipelineMetrics()
    inputs = app.topic(settings.topic_posts, settings.topic_reviews, value_serializer="raw", key_serializer="raw")
    scored_topic = app.topic(settings.topic_scored, value_serializer="raw", key_serializer="raw")
    dead_topic = app.topic(settings.topic_dead_letter, value_serializer="raw", key_serializer="raw")
    alerts_topic = app.topic(settings.topic_alerts, value_serializer="raw", key_serializer="raw")
    wiring = wiring_factory(settings, Topics(scored_topic, dead_topic, alerts_topic), metrics)
    ready = asyncio.Event()
    done: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset fully processed

    @app.task  # type: ignore[untyped-decorator]
    async def _start_inference() -> None:
        await wiring.start()
        if wiring.swapper is not None:  # SIGHUP: swap to the model SM_MODEL_DIR names now
            wiring.swapper.on_sighup(lambda: load_settings().model_dir)
        ready.set()
        config = settings.masked()
        log.info("worker ready; effective config: %s", config, extra={"config": config})

    @app.timer(settings.alert_tick_s)  # type: ignore[untyped-decorator]
    async def _detect() -> None:
        """Every worker ticks; only the holder of the Redis lease evaluates (see AlertService)."""
        if wiring.alerts is None or not ready.is_set():
            return
        if wiring.fanout is not None:
            wiring.fanout.start()
        try:
            await wiring.alerts.tick()
        except Exception:  # the next tick retries from the saved state and outbox
            log.exception("alert evaluation failed")

    @app.agent(inputs)
    async def score(stream: Any) -> None:
        """Two batches in flight: scoring batch n+1 overlaps publishing and counting batch n.
        Each message is held (incref) past `take_events`' own ack and released only after its
        batch's Redis write, so no offset commits before its counts are flushed."""
        await ready.wait()
        previous: asyncio.Task[None] | None = None
        async for events in stream.take_events(settings.batch_max_size, within=settings.batch_max_wait_s):
            now = time.monotonic()
            for event in events:
                event.message.incref()
            batch = [
                RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.value, now) for e in events
            ]
            for topic, count in Counter(record.topic for record in batch).items():  # one inc per topic
                metrics.messages_in.labels(topic=topic).inc(count)
            prepared = await wiring.processor.prepare(batch)
            if previous is not None:
                await previous  # commits stay in batch order; re-raises a failed commit here
            previous = asyncio.create_task(_commit_then_ack(stream, prepared, list(events)))
            previous.add_done_callback(_log_failure)

    def _log_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("batch commit failed; its offsets stay uncommitted", exc_info=task.exception())

    async def _commit_then_ack(stream: Any, prepared: Any, events: list[Any]) -> None:
        await wiring.processor.commit(prepared)
        for event in events:
            await stream.ack(event)
            done[(event.message.topic, event.message.partition)] = event.message.offset

    @app.timer(settings.lag_interval_s)  # type: ignore[untyped-decorator]
    async def _measure_lag() -> None:
        """Lag = the partition's end offset minus the next offset this worker would process.

        Measured on a timer, not at scrape time: end offsets go through Faust's consumer thread
        and take up to a fetch cycle (about a second), longer than a tight scrape timeout.
        """
        try:
            assigned = sorted(app.consumer.assignment())
            ends = await app.consumer.highwaters(*assigned) if assigned else {}
            lags: dict[tuple[str, str], int] = {}
            for tp in assigned:
                last = done.get((tp.topic, tp.partition))
                next_offset = last + 1 if last is not None else await app.consumer.position(tp)
                if ends.get(tp) is not None and next_offset is not None:
                    lags[(tp.topic, str(tp.partition))] = max(0, ends[tp] - next_offset)
        except Exception:  # lag is best effort during a rebalance; the next tick tries again
            log.debug("could not compute consumer lag", exc_info=True)
            return
        metrics.consumer_lag.clear()  # partitions that moved away drop out
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        if wiring.refresh_metrics is not None:
            try:
                await wiring.refresh_metrics()
            except Exception:  # a Redis hiccup must not take the whole scrape down
                log.warning("could not refresh entity gauges", exc_info=True)
        return aioweb.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    def _json(web: Any, response: tuple[int, Any]) -> Any:
        return web.json(response[1], status=response[0])

    @app.page("/entities")
    async def _entities(web: Any, request: Any) -> Any:
        return _json(web, await http_api.get_entities(wiring.store, request.query))

    @app.page("/entities/{name}")
    async def _entity(web: Any, request: Any, name: str) -> Any:
        return _json(web, await http_api.get_entity(wiring.store, name, request.query))

    @app.page("/entities/{name}/series")
    async def _series(web: Any, request: Any, name: str) -> Any:
        return _json(web, await http_api.get_series(wiring.store, name, request.query))

    @app.page("/top")
    async def _top(web: Any, request: Any) -> Any:
        return _json(web, await http_api.get_top(wiring.store, request.query))

    @app.page("/alerts")
    async def _alerts(web: Any, request: Any) -> Any:
        if wiring.alert_state is None:
            return web.json({"active": [], "recent": []})
        active = [a.model_dump(mode="json") for a in await wiring.alert_state.active()]
        recent = [a.model_dump(mode="json") for a in await wiring.alert_state.recent()]
        return web.json({"active": active, "recent": recent})

    @app.page("/overview")
    async def _overview(web: Any, request: Any) -> Any:
        return _json(web, await http_api.get_overview(wiring.store, wiring.watchlist, request.query))

    @app.page("/dashboard")
    async def _dashboard(web: Any, request: Any) -> Any:
        return static_file("dashboard.html")

    @app.page("/dashboard/{asset}")
    async def _dashboard_asset(web: Any, request: Any, asset: str) -> Any:
        return static_file(asset)

    @app.page("/admin/model")
    class _AdminModel(faust.web.View):
        """POST {"model_dir": ...}: swap the model live (bearer token checked by the guard)."""

        async def post(self, request: Any) -> Any:
            if wiring.swapper is None:
                return self.json({"error": "this worker cannot swap models"}, status=404)
            status, body = await wiring.swapper.admin_request(await request.read(), settings.web_token is not None)
            return self.json(body, status=status)

    @app.page("/healthz")
    async def _healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def _readyz(web: Any, request: Any) -> Any:
        return web.json({"ready": ready.is_set()}, status=200 if ready.is_set() else 503)

    app.sm_ready = ready  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM)."""
    app = build_app(settings)
    # The CLI configured logging (plain or JSON); Faust must not replace it.
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False)
    worker.execute_from_commandline()
