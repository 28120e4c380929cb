"""Per-entity sentiment gauges for Prometheus, computed from the Redis aggregates at scrape time.

A custom collector (prometheus client's one-method `collect` seam): the `/metrics` handler
awaits `refresh()` first, which reads the current windows for the watch-list entities only,
so label cardinality is bounded by the watch-list times the windows. `sm_alert_active` has
one series per firing alert, which the alert cooldown and the entity bound keep small.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream_app.pipeline.keys import entity_key
from stream_app.pipeline.ports import AggregateStore
from stream_app.pipeline.windows import parse_window, sum_buckets, window_minutes

DEFAULT_WINDOWS: tuple[str, ...] = ("1m", "5m", "1h")


class ActiveAlerts(Protocol):
    async def active(self) -> Sequence[Any]: ...


class WatchListCollector(Collector):
    def __init__(self, entities: Iterable[str], windows: Sequence[str] = DEFAULT_WINDOWS) -> None:
        self.entities = sorted(entities)
        self.windows = tuple(windows)
        self._snapshot: dict[tuple[str, str], dict[str, float]] = {}
        self._alerts: list[tuple[str, str]] = []

    async def refresh(self, store: AggregateStore, alerts: ActiveAlerts | None = None) -> None:
        """Reads the current windows (and the firing alerts, for dashboard annotations)."""
        if alerts is not None:
            self._alerts = sorted((a.entity, a.severity) for a in await alerts.active())
        # One read per entity over the longest window; the shorter windows are its tail.
        now = time.time()
        spans = {window: window_minutes(now, parse_window(window)) for window in self.windows}
        first = min(start for start, _ in spans.values())
        last = max(end for _, end in spans.values())
        snapshot = {}
        for entity in self.entities:
            buckets = await store.minutes(entity_key(entity), first, last)
            for window, (start, end) in spans.items():
                total = sum_buckets(buckets, start, end)
                snapshot[(entity, window)] = {"negative_share": total.negative_share, "volume": float(total.volume)}
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        share = GaugeMetricFamily(
            "sm_entity_negative_share", "Negative share over the window (watch-list)", labels=["entity", "window"]
        )
        volume = GaugeMetricFamily(
            "sm_entity_volume", "Posts over the window (watch-list)", labels=["entity", "window"]
        )
        for (entity, window), values in sorted(self._snapshot.items()):
            share.add_metric([entity, window], values["negative_share"])
            volume.add_metric([entity, window], values["volume"])
        yield share
        yield volume
        active = GaugeMetricFamily(
            "sm_alert_active", "1 while a negative-spike alert fires for the entity", labels=["entity", "severity"]
        )
        for entity, severity in self._alerts:
            active.add_metric([entity, severity], 1.0)
        yield active
