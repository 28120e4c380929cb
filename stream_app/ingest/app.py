"""The Faust edge: the app, the agent that feeds `BatchProcessor`, the timers and the web server.

Everything else the worker runs is built in `stream_app.wiring`; the pages come from
`stream_app.web.routes`. Swapping the stream layer means rewriting `stream_app/ingest/` only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import faust

from exporters.prometheus import PipelineMetrics
from exporters.redis.connection import connect
from stream_app.ingest.consumer import bound_fetch_wait
from stream_app.ingest.health import OUTAGES, DependencyHealth, redis_address
from stream_app.ingest.kafka_config import KafkaClientConfig
from stream_app.ingest.publishers import EarlyPublisher, FaustAlertPublisher, FaustPublisher
from stream_app.ingest.resilience import INFRA_ERRORS, RetryingPublisher, arm_exit_watchdog, dependency_of, exit_worker
from stream_app.logs import report_connection_errors
from stream_app.pipeline.process import Prepared, RawRecord
from stream_app.settings import Settings, load_settings
from stream_app.web import security as web_security
from stream_app.web.pages import token_guard
from stream_app.web.routes import WORKER_ROUTES, ModelSwap, Route, Site
from stream_app.wiring import Outputs, Wiring, WiringFactory, default_wiring

log = logging.getLogger(__name__)

Done = dict[tuple[str, int], int]  # (topic, partition) -> last offset fully processed


def faust_app(settings: Settings) -> faust.App:
    kafka = KafkaClientConfig.from_settings(settings)
    app = faust.App(
        settings.app_id,
        broker=kafka.faust_brokers(),
        broker_credentials=kafka.faust_credentials(),
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
        consumer_group_instance_id=settings.kafka_group_instance_id,
        # A static member that restarts gets its old assignment back, and Faust's assignor checks
        # that the URL inside it is this worker's: tie the URL to the instance id, not the port.
        **_static_url(settings),
        producer_max_request_size=settings.kafka_max_message_bytes,
        broker_heartbeat_interval=settings.kafka_session_timeout_s / 5,
        broker_commit_every=200,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_max_size * 4),
        producer_linger=0.005,
        web_application_options=web_security.application_options(
            settings.web_host,
            settings.web_allowed_hosts.split(","),
            settings.dashboard_url,
            [token_guard(settings.web_token.get_secret_value())] if settings.web_token else [],
        ),
    )
    bound_fetch_wait(app)
    return app


def _static_url(settings: Settings) -> dict[str, Any]:
    return {"canonical_url": f"http://{settings.kafka_group_instance_id}"} if settings.kafka_group_instance_id else {}


def _raw_topic(app: faust.App, *names: str) -> Any:
    return app.topic(*names, value_serializer="raw", key_serializer="raw")


def build_app(settings: Settings, wiring_factory: WiringFactory = default_wiring) -> faust.App:
    app = faust_app(settings)
    metrics = PipelineMetrics()
    _quiet_outages(settings, metrics)
    early = EarlyPublisher(
        FaustPublisher(_raw_topic(app, settings.topic_scored), _raw_topic(app, settings.topic_dead_letter), metrics)
    )
    outputs = Outputs(
        batches=RetryingPublisher(early),
        alerts=FaustAlertPublisher(_raw_topic(app, settings.topic_alerts), metrics),
    )
    wiring = wiring_factory(settings, outputs, metrics)
    ready = asyncio.Event()
    done: Done = {}
    _add_lifecycle(app, settings, wiring, ready)
    _add_agent(app, settings, wiring, ready, metrics, done, early)
    _add_detector(app, settings, wiring, ready)
    _add_lag_timer(app, settings, metrics, done)
    health = _add_health_probe(app, settings, wiring, metrics)
    _add_store_upkeep(app, settings, wiring)
    site = Site(
        store=wiring.store,
        alert_state=wiring.alert_state,
        watchlist=wiring.watchlist,
        ready=ready.is_set,
        render_metrics=metrics.render,
        refresh_metrics=wiring.refresh_metrics,
        dependencies=health.status if health is not None else dict,
        aliases=wiring.aliases,
        token=settings.web_token is not None,
        swap_model=_swap_model(wiring),
        routes=WORKER_ROUTES,
    )
    for route in WORKER_ROUTES:
        _add_route(app, route, site)
    app.sm_ready = ready  # type: ignore[attr-defined]
    return app


def _quiet_outages(settings: Settings, metrics: PipelineMetrics) -> None:
    """A lost Redis or Kafka: one warning, one line when it is back, every retry counted
    (`sm_dependency_retries_total`). `run_worker` also routes the Kafka client's connection errors here."""
    redis_url = settings.redis_url.get_secret_value()
    OUTAGES.names.update(kafka=f"Kafka at {settings.kafka_bootstrap}", redis=f"Redis at {redis_address(redis_url)}")
    OUTAGES.listeners[:] = [metrics.dependency_retried]


def _add_lifecycle(app: faust.App, settings: Settings, wiring: Wiring, ready: asyncio.Event) -> None:
    @app.task  # type: ignore[untyped-decorator]
    async def _start_wiring() -> None:
        await wiring.start()
        if wiring.swapper is not None:  # SIGHUP: swap to the model SM_MODEL_DIR names now
            wiring.swapper.on_sighup(lambda: load_settings().model_dir)
        ready.set()
        config = settings.masked()
        log.info("worker ready; effective config: %s", config, extra={"config": config})

    @app.on_before_shutdown.connect
    async def _stop_wiring(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """After the consumer stopped: close the runner, the alert sinks and the Redis client."""
        ready.clear()
        await wiring.stop()


def _add_agent(
    app: faust.App,
    settings: Settings,
    wiring: Wiring,
    ready: asyncio.Event,
    metrics: PipelineMetrics,
    done: Done,
    early: EarlyPublisher,
) -> None:
    inputs = _raw_topic(app, settings.topic_posts, settings.topic_reviews)

    @app.agent(inputs)
    async def score(stream: Any) -> None:
        """Any error escaping the batch loop ends the process (see `exit_worker`): Faust would
        otherwise restart the agent in-process and drop the batches it had taken."""
        try:
            await _score_batches(stream)
        except Exception as exc:
            exit_worker(exc)

    async def _score_batches(stream: Any) -> None:
        """Two batches in flight: while batch n is committed (publish acknowledged, then its Redis
        write), batch n+1 is scored and its records are sent (`EarlyPublisher.send_early`); its
        commit then waits for those acknowledgements before its own Redis write. Commits run one
        at a time, in batch order. Each message is held (incref) past `take_events`' own ack and
        released only after its batch's Redis write, so no offset commits before its counts are
        flushed (tests/agent/test_commit_order.py pins the order)."""
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
            if isinstance(prepared, Prepared):  # test processors may hand back something else
                early.send_early(prepared.scored, prepared.dead)  # overlaps the Redis write of the batch before
            if previous is not None:
                await previous  # commits stay in batch order; re-raises a failed commit here
            previous = asyncio.create_task(_commit_then_ack(stream, prepared, list(events)))
            previous.add_done_callback(_log_failure)

    async def _commit_then_ack(stream: Any, prepared: Any, events: list[Any]) -> None:
        await wiring.processor.commit(prepared)
        written = time.time()
        metrics.records_aggregated([written - e.message.timestamp for e in events if e.message.timestamp])
        for event in events:
            await stream.ack(event)
            done[(event.message.topic, event.message.partition)] = event.message.offset


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("batch commit failed; its offsets stay uncommitted", exc_info=task.exception())


def _add_detector(app: faust.App, settings: Settings, wiring: Wiring, ready: asyncio.Event) -> None:
    @app.timer(settings.alert_tick_s)  # type: ignore[untyped-decorator]
    async def _detect() -> None:
        """Every worker ticks; only the holder of the Redis lease evaluates (see AlertService)."""
        if wiring.alerts is None or not ready.is_set():
            return
        try:
            await wiring.alerts.tick()
        except INFRA_ERRORS as exc:  # the next tick retries from the saved state and outbox
            dependency = dependency_of(exc)
            if dependency is None:
                log.warning("alert evaluation failed, retrying at the next tick: %r", exc)
            else:
                OUTAGES.retried(dependency, f"alert evaluation failed: {exc!r}")
        except Exception:
            log.exception("alert evaluation failed")


def _add_health_probe(
    app: faust.App, settings: Settings, wiring: Wiring, metrics: PipelineMetrics
) -> DependencyHealth | None:
    """Redis and Kafka reachability, probed on a timer for /readyz (never on the request path)."""
    client = getattr(wiring.store, "client", None)  # test wirings may carry a read-only fake store
    if client is None:
        return None
    health = DependencyHealth(client, settings.kafka_bootstrap, outages=OUTAGES, on_probe=metrics.dependency_probed)

    @app.task  # type: ignore[untyped-decorator]
    async def _first_probe() -> None:  # at start, so /readyz does not wait for the first tick
        await health.probe()

    @app.timer(2.0)  # type: ignore[untyped-decorator]
    async def _probe_dependencies() -> None:
        await health.probe()

    return health


def _add_lag_timer(app: faust.App, settings: Settings, metrics: PipelineMetrics, done: Done) -> None:
    @app.timer(settings.lag_interval_s)  # type: ignore[untyped-decorator]
    async def _measure_lag() -> None:
        """Lag = the partition's end offset minus the next offset this worker would process.

        Measured on a timer, not at scrape time: end offsets go through Faust's consumer thread
        and take up to a fetch cycle (about a second), longer than a tight scrape timeout.
        """

        async def measure() -> dict[tuple[str, str], int]:
            assigned = sorted(app.consumer.assignment())
            ends = await app.consumer.highwaters(*assigned) if assigned else {}
            lags: dict[tuple[str, str], int] = {}
            for tp in assigned:
                last = done.get((tp.topic, tp.partition))
                next_offset = last + 1 if last is not None else await app.consumer.position(tp)
                if ends.get(tp) is not None and next_offset is not None:
                    lags[(tp.topic, str(tp.partition))] = max(0, ends[tp] - next_offset)
            return lags

        if OUTAGES.is_down("kafka"):  # the end offsets would not come; the gauge keeps its last values
            return
        try:  # bounded all the same: the next tick tries again
            lags = await asyncio.wait_for(measure(), settings.lag_interval_s)
        except Exception:  # lag is best effort during a rebalance or an outage
            log.debug("could not compute consumer lag", exc_info=True)
            return
        metrics.consumer_lag.clear()  # partitions that moved away drop out
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)


def _swap_model(wiring: Wiring) -> ModelSwap | None:
    swapper = wiring.swapper
    if swapper is None:
        return None
    return lambda body: swapper.admin_request(body, True)


def _add_store_upkeep(app: faust.App, settings: Settings, wiring: Wiring) -> None:
    """Resume from the store, and keep its leaderboards rolling while no records arrive.

    After each rebalance Faust seeks every partition to its committed offset. When the store's
    own fences are behind that (Redis lost acknowledged writes), the partition is sought back to
    just after the store's fence, so the records the store lost are read, scored and counted
    again; records the store holds are skipped by the processor (docs/design.md)."""
    store = wiring.store
    if store is None:
        return
    inputs = {settings.topic_posts, settings.topic_reviews}

    @app.on_partitions_assigned.connect
    async def _install_resume(app: faust.App, /, *args: Any, **kwargs: Any) -> None:
        consumer: Any = app.consumer  # Faust's consumer: its seek hook is not in its public type
        if getattr(consumer, "_sm_resume_installed", False):
            return
        committed_seek = consumer.perform_seek

        async def perform_seek() -> None:
            await committed_seek()
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic in inputs)
            fences = await wiring.processor.resume_offsets([(tp.topic, tp.partition) for tp in assigned])
            for tp in assigned:
                applied = fences.get((tp.topic, tp.partition))
                committed = consumer._committed_offset.get(tp)
                if applied is None or applied + 1 == committed:
                    continue
                behind = committed is not None and applied + 1 < committed
                (log.warning if behind else log.info)(
                    "%s:%d resumes from the store's fence, offset %d (Kafka's commit: %s)%s",
                    tp.topic, tp.partition, applied + 1, committed,
                    ": Redis lost writes, the records after it are read again" if behind else "",
                )  # fmt: skip
                await consumer.seek(tp, applied + 1)

        consumer.perform_seek = perform_seek
        consumer._sm_resume_installed = True

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def _roll_leaderboards() -> None:
        try:
            await store.roll()
        except Exception:  # upkeep only: the next batch or tick rolls them too
            log.debug("could not roll the leaderboards", exc_info=True)


def _add_route(app: faust.App, route: Route, site: Site) -> None:
    """JSON results go through Faust's `web.json`; aiohttp responses pass through as they are."""

    if route.method == "POST":

        class _Post(faust.web.View):
            async def post(self, request: Any, **params: str) -> Any:
                result = await route.handler(site, request.query, body=await request.read(), **params)
                if isinstance(result, tuple):
                    return self.json(result[1], status=result[0])
                return result

        _Post.__name__ = f"page_{route.name}"
        app.page(route.path, name=route.name)(_Post)
        return

    async def view(web: Any, request: Any, **params: str) -> Any:
        result = await route.handler(site, request.query, **params)
        if isinstance(result, tuple):
            return web.json(result[1], status=result[0])
        return result

    view.__name__ = f"page_{route.name}"
    app.page(route.path, name=route.name)(view)


async def _wait_for_dependencies(settings: Settings) -> None:
    url = settings.redis_url.get_secret_value()
    client = connect(url)
    try:
        await DependencyHealth(client, settings.kafka_bootstrap).wait_until_reachable(
            settings.startup_wait_s, redis_address(url)
        )
    finally:
        await client.aclose()


class _BoundedStopWorker(faust.Worker):
    """A stop (SIGTERM/SIGINT) that takes longer than `shutdown_timeout_s` exits at once."""

    shutdown_timeout_s = 25.0

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            arm_exit_watchdog(self.shutdown_timeout_s)
        super()._schedule_shutdown(signal)


def run_worker(settings: Settings) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM). Waits (bounded) for Redis and Kafka first."""
    asyncio.run(_wait_for_dependencies(settings))
    app = build_app(settings)
    # aiokafka logs every failed reconnect (about 90 lines a second with the broker away): count them instead.
    report_connection_errors(lambda message: OUTAGES.retried("kafka", message), lambda: OUTAGES.is_down("kafka"))
    # The CLI configured logging (plain or JSON); Faust must not replace it.
    worker = _BoundedStopWorker(app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False)
    worker.shutdown_timeout_s = settings.shutdown_timeout_s
    worker.execute_from_commandline()
