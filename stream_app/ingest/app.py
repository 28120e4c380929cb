"""The Faust edge: the app, its web server, and the process around it.

Everything the worker runs is built by the composition root (`stream_app.wiring`) and handed in
as a `Wiring`, with the plain values of a `StreamConfig`; the agent is in `agent.py`, the timers
in `timers.py`, the pages come from `stream_app.web.routes`. Swapping the stream layer means
rewriting `stream_app/ingest/` only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from exporters.prometheus.metrics import PipelineMetrics
from exporters.redis.connection import connect
from schemas.models import DeadLetter, ScoredEvent
from stream_app.ingest import timers
from stream_app.ingest.agent import Done, add_agent
from stream_app.ingest.consumer import bound_fetch_wait
from stream_app.ingest.health import OUTAGES, DependencyHealth, redis_address
from stream_app.ingest.kafka_config import StreamConfig
from stream_app.ingest.parts import Outputs, Wiring, WiringFactory
from stream_app.ingest.publishers import EarlySink, alert_sink, dead_letter_sink, scored_sink
from stream_app.ingest.resilience import arm_exit_watchdog
from stream_app.logs import report_connection_errors
from stream_app.web import security as web_security
from stream_app.web.pages import token_guard
from stream_app.web.routes import WORKER_ROUTES, Route, Site

log = logging.getLogger(__name__)


def faust_app(config: StreamConfig) -> faust.App:
    kafka = config.kafka
    app = faust.App(
        config.app_id,
        broker=kafka.faust_brokers(),
        broker_credentials=kafka.faust_credentials(),
        store="memory://",
        datadir=str(config.data_dir),
        topic_partitions=config.topics.partitions,
        topic_replication_factor=config.topics.replication,
        topic_allow_declare=False,
        web_bind=config.web_host,
        web_host=config.web_host,
        web_port=config.web_port,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        consumer_group_instance_id=config.group_instance_id,
        # A static member that restarts gets its old assignment back, and Faust's assignor checks
        # that the URL inside it is this worker's: tie the URL to the instance id, not the port.
        **_static_url(config.group_instance_id),
        producer_max_request_size=config.max_message_bytes,
        broker_heartbeat_interval=config.session_timeout_s / 5,
        broker_commit_every=200,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, config.batch_max_size * 4),
        producer_linger=0.005,
        web_application_options=web_security.application_options(
            config.web_host,
            config.web_allowed_hosts,
            config.dashboard_url,
            [token_guard(config.web_token)] if config.web_token else [],
        ),
    )
    bound_fetch_wait(app)
    return app


def _static_url(group_instance_id: str | None) -> dict[str, Any]:
    return {"canonical_url": f"http://{group_instance_id}"} if group_instance_id else {}


def _raw_topic(app: faust.App, *names: str) -> Any:
    return app.topic(*names, value_serializer="raw", key_serializer="raw")


def build_app(config: StreamConfig, wiring_factory: WiringFactory) -> faust.App:
    app = faust_app(config)
    metrics = PipelineMetrics()
    OUTAGES.names.update(
        kafka=f"Kafka at {config.kafka.bootstrap_servers}", redis=f"Redis at {redis_address(config.redis_url)}"
    )
    OUTAGES.listeners[:] = [metrics.dependency_retried]
    early_scored: EarlySink[ScoredEvent] = EarlySink(scored_sink(_raw_topic(app, config.topics.scored), metrics))
    early_dead: EarlySink[DeadLetter] = EarlySink(dead_letter_sink(_raw_topic(app, config.topics.dead_letter), metrics))
    alerts = alert_sink(_raw_topic(app, config.topics.alerts), metrics)
    wiring = wiring_factory(Outputs(early_scored, early_dead, alerts), metrics)
    ready = asyncio.Event()
    done: Done = {}
    _add_lifecycle(app, config, wiring, ready)
    add_agent(app, config, wiring, ready, metrics, done, (early_scored, early_dead))
    timers.add_detector(app, config, wiring, ready)
    timers.add_lag_timer(app, config, metrics, done)
    health = timers.add_health_probe(app, config, wiring, metrics)
    timers.add_store_upkeep(app, config, wiring, metrics)
    site = Site(
        store=wiring.store,
        alert_state=wiring.alert_state,
        watchlist=wiring.watchlist,
        ready=ready.is_set,
        render_metrics=metrics.render,
        refresh_metrics=wiring.refresh_metrics,
        dependencies=health.status if health is not None else dict,
        aliases=wiring.aliases,
        token=config.web_token is not None,
        swap_model=wiring.swap_model,
        routes=WORKER_ROUTES,
    )
    for route in WORKER_ROUTES:
        _add_route(app, route, site)
    app.sm_ready = ready  # type: ignore[attr-defined]
    return app


def _add_lifecycle(app: faust.App, config: StreamConfig, wiring: Wiring, ready: asyncio.Event) -> None:
    @app.task  # type: ignore[untyped-decorator]
    async def _start_wiring() -> None:
        await wiring.start()
        if wiring.reloader is not None and config.reload_model_dir is not None:
            wiring.reloader.on_sighup(config.reload_model_dir)  # SIGHUP: the model SM_MODEL_DIR names now
        ready.set()
        log.info("worker ready; effective config: %s", dict(config.effective), extra={"config": dict(config.effective)})

    @app.on_before_shutdown.connect
    async def _stop_wiring(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """After the consumer stopped: stop the runner, then flush and stop every sink."""
        ready.clear()
        await wiring.stop()


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


async def _wait_for_dependencies(config: StreamConfig) -> None:
    client = connect(config.redis_url)
    try:
        await DependencyHealth(client, config.kafka.bootstrap_servers).wait_until_reachable(
            config.startup_wait_s, redis_address(config.redis_url)
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


def run_worker(config: StreamConfig, wiring_factory: WiringFactory) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM). Waits (bounded) for Redis and Kafka first."""
    asyncio.run(_wait_for_dependencies(config))
    app = build_app(config, wiring_factory)
    # aiokafka logs every failed reconnect (about 90 lines a second with the broker away): count them instead.
    report_connection_errors(lambda message: OUTAGES.retried("kafka", message), lambda: OUTAGES.is_down("kafka"))
    # The CLI configured logging (plain or JSON); Faust must not replace it.
    worker = _BoundedStopWorker(app, loglevel=config.log_level.lower(), quiet=True, override_logging=False)
    worker.shutdown_timeout_s = config.shutdown_timeout_s
    worker.execute_from_commandline()
