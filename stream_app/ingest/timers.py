"""The worker's timers and rebalance hooks: the detector's tick, the health probe, the consumer
lag, resuming from the store's fences, and keeping the store's leaderboards rolling."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from exporters.prometheus.metrics import PipelineMetrics
from stream_app.ingest.agent import Done
from stream_app.ingest.health import OUTAGES, DependencyHealth
from stream_app.ingest.kafka_config import StreamConfig
from stream_app.ingest.parts import Wiring

log = logging.getLogger(__name__)


def add_detector(app: faust.App, config: StreamConfig, wiring: Wiring, ready: asyncio.Event) -> None:
    @app.timer(config.alert_tick_s)  # type: ignore[untyped-decorator]
    async def _detect() -> None:
        """Every worker ticks; only the holder of the Redis lease evaluates (see AlertService)."""
        if wiring.alerts is None or not ready.is_set():
            return
        try:
            await wiring.alerts.tick()
        except wiring.retry.transient as exc:  # the next tick retries from the saved state and outbox
            dependency = wiring.retry.dependency_of(exc)
            if dependency is None:
                log.warning("alert evaluation failed, retrying at the next tick: %r", exc)
            else:
                OUTAGES.retried(dependency, f"alert evaluation failed: {exc!r}")
        except Exception:
            log.exception("alert evaluation failed")


def add_health_probe(
    app: faust.App, config: StreamConfig, wiring: Wiring, metrics: PipelineMetrics
) -> DependencyHealth | None:
    """Redis and Kafka reachability, probed on a timer for /readyz (never on the request path)."""
    client = getattr(wiring.store, "client", None)  # test wirings may carry a read-only fake store
    if client is None:
        return None
    health = DependencyHealth(
        client, config.kafka.bootstrap_servers, outages=OUTAGES, on_probe=metrics.dependency_probed
    )

    @app.task  # type: ignore[untyped-decorator]
    async def _first_probe() -> None:  # at start, so /readyz does not wait for the first tick
        await health.probe()

    @app.timer(2.0)  # type: ignore[untyped-decorator]
    async def _probe_dependencies() -> None:
        await health.probe()

    return health


def add_lag_timer(app: faust.App, config: StreamConfig, metrics: PipelineMetrics, done: Done) -> None:
    @app.timer(config.lag_interval_s)  # type: ignore[untyped-decorator]
    async def _measure_lag() -> None:
        """Lag = the partition's end offset minus the next offset this worker would process.

        Measured on a timer, not at scrape time: end offsets go through Faust's consumer thread
        and take up to a fetch cycle, longer than a tight scrape timeout.
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
            lags = await asyncio.wait_for(measure(), config.lag_interval_s)
        except Exception:  # lag is best effort during a rebalance or an outage
            log.debug("could not compute consumer lag", exc_info=True)
            return
        metrics.consumer_lag.clear()  # partitions that moved away drop out
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)


def add_store_upkeep(app: faust.App, config: StreamConfig, wiring: Wiring, metrics: PipelineMetrics) -> None:
    """Resume from the store, and keep its leaderboards rolling while no records arrive.

    After each rebalance Faust seeks every partition to its committed offset. The store's own
    fences are the truth: each partition is then sought to just after its fence (back, when
    Redis lost acknowledged writes, so the records it lost are read, scored and counted again;
    forward, past what the store already holds). A partition the store never saw keeps Kafka's
    committed offset (docs/design.md)."""
    store = wiring.store
    if store is None:
        return
    inputs = set(config.topics.inputs)

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
                if behind:
                    metrics.partition_resumed()
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
