"""Prometheus metrics, on a registry owned by each worker (tests build their own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from schemas.models import DeadLetter

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The worker's own latency (docs/serving.md: p50 <= 150 ms, p99 <= 500 ms at half capacity).
RECORD_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30, 60)
DEPENDENCIES = ("kafka", "redis")


class PipelineMetrics:
    """Implements `BatchObserver`. Labels are bounded: topics and dead-letter reasons are fixed sets."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter("sm_messages_in_total", "Records consumed", ["topic"], registry=r)
        self.messages_out = Counter("sm_messages_out_total", "Records produced", ["topic"], registry=r)
        self.dead_letters = Counter("sm_dead_letters_total", "Records dead-lettered", ["reason"], registry=r)
        self.batch_size = Histogram("sm_batch_size", "Records per micro-batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("sm_batch_duration_seconds", "Wall time per micro-batch", registry=r)
        self.model = Info("sm_model", "The loaded sentiment model", registry=r)
        self.entities_dropped = Gauge(
            "sm_entities_dropped", "Entity mentions not aggregated by the cardinality bound (this worker)", registry=r
        )
        self.entities_tracked = Gauge(
            "sm_entities_tracked", "Non-watch-list entities tracked (this worker)", registry=r
        )
        self.stage_seconds = Histogram(
            "sm_inference_stage_seconds",
            "Inference time per batch, by stage",
            ["stage"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.redis_write_seconds = Histogram("sm_redis_write_seconds", "Redis write per batch", registry=r)
        self.redis_write_errors = Counter("sm_redis_write_errors_total", "Failed Redis batch writes", registry=r)
        self.event_to_aggregate_seconds = Histogram(
            "sm_event_to_aggregate_seconds",
            "From event time to its aggregate written",
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
        )
        self.record_to_aggregate_seconds = Histogram(
            "sm_record_to_aggregate_seconds",
            "From the Kafka record's timestamp to its batch's aggregates written to Redis",
            registry=r,
            buckets=RECORD_LATENCY_BUCKETS,
        )
        self.dependency_retries = Counter(
            "sm_dependency_retries_total",
            "Failed attempts to reach a dependency that were retried (client reconnects, batch retries)",
            ["dependency"],
            registry=r,
        )
        self.dependency_up = Gauge(
            "sm_dependency_up", "1 while the last probe reached the dependency", ["dependency"], registry=r
        )
        for dependency in DEPENDENCIES:  # series exist from the start, so increase() sees the first retry
            self.dependency_retries.labels(dependency=dependency)
        self.alerts = Counter("sm_alerts_total", "Alerts emitted", ["status", "severity"], registry=r)
        self.sink_deliveries = Counter(
            "sm_alert_sink_deliveries_total", "Alerts delivered, by sink", ["sink"], registry=r
        )
        self.sink_failures = Counter(
            "sm_alert_sink_failures_total", "Alerts a sink finally failed to take", ["sink", "reason"], registry=r
        )
        self.consumer_lag = Gauge(
            "sm_consumer_lag", "Records behind the partition's end offset", ["topic", "partition"], registry=r
        )
        self.late_events = Gauge("sm_late_events", "Events beyond the allowed lateness (this worker)", registry=r)
        self.resumed_from_store = Counter(
            "sm_partitions_resumed_from_store_total",
            "Partitions sought back to the store's fence because Redis held less than Kafka's commit",
            registry=r,
        )
        self.model_swaps = Counter("sm_model_swaps", "Live model swaps, by outcome", ["outcome"], registry=r)
        self.model_last_swap = Gauge("sm_model_last_swap_timestamp_seconds", "When the model last changed", registry=r)
        self.model_last_swap_failure = Gauge(
            "sm_model_last_swap_failure_timestamp_seconds", "When a swap last failed (0: never)", registry=r
        )

    def records_out(self, topic: str, count: int) -> None:
        self.messages_out.labels(topic=topic).inc(count)

    def partition_resumed(self) -> None:
        self.resumed_from_store.inc()

    def model_swapped(self, ok: bool, at: float) -> None:
        """The engine's swap observer: outcome counted, time of the last success or failure."""
        self.model_swaps.labels(outcome="ok" if ok else "failed").inc()
        (self.model_last_swap if ok else self.model_last_swap_failure).set(at)

    def alert_emitted(self, alert: Any) -> None:
        self.alerts.labels(status=alert.status, severity=alert.severity).inc()

    def sink_delivered(self, sink: str) -> None:
        self.sink_deliveries.labels(sink=sink).inc()

    def sink_failed(self, sink: str, reason: str) -> None:
        self.sink_failures.labels(sink=sink, reason=reason).inc()

    def stage_done(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)

    def aggregates_written(self, seconds: float, event_ages_s: Sequence[float]) -> None:
        self.redis_write_seconds.observe(seconds)
        for age in event_ages_s:
            self.event_to_aggregate_seconds.observe(max(0.0, age))

    def aggregates_failed(self) -> None:
        self.redis_write_errors.inc()

    def records_aggregated(self, ages_s: Sequence[float]) -> None:
        """Kafka record timestamp -> aggregates written, per record (clock skew clamps to 0)."""
        for age in ages_s:
            self.record_to_aggregate_seconds.observe(max(0.0, age))

    def dependency_retried(self, dependency: str) -> None:
        self.dependency_retries.labels(dependency=dependency).inc()

    def dependency_probed(self, dependency: str, up: bool) -> None:
        self.dependency_up.labels(dependency=dependency).set(1.0 if up else 0.0)

    def track_admission(self, admission: Any) -> None:
        self.entities_dropped.set_function(lambda: float(admission.dropped))
        self.entities_tracked.set_function(lambda: float(len(admission.tracked)))

    def track_store(self, store: Any) -> None:
        self.late_events.set_function(lambda: float(store.late_applied))

    def batch_done(self, size: int, scored: int, dead: Sequence[DeadLetter], seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        for letter in dead:
            self.dead_letters.labels(reason=letter.reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
