"""Per-entity sentiment gauges for Prometheus, computed from the Redis aggregates at scrape time.

A custom collector (prometheus client's one-method `collect` seam): the `/metrics` handler
awaits `refresh()` first, which reads the current windows for the watch-list entities only,
so label cardinality is bounded by the watch-list times the windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporters.queries import entity_window
from exporters.redis_store import AggregateStore

DEFAULT_WINDOWS: tuple[str, ...] = ("1m", "5m", "1h")


class WatchListCollector(Collector):
    def __init__(self, entities: Iterable[str], windows: Sequence[str] = DEFAULT_WINDOWS) -> None:
        self.entities = sorted(entities)
        self.windows = tuple(windows)
        self._snapshot: dict[tuple[str, str], dict[str, float]] = {}

    async def refresh(self, store: AggregateStore) -> None:
        snapshot = {}
        for entity in self.entities:
            for window in self.windows:
                view = await entity_window(store, entity, window)
                snapshot[(entity, window)] = {"negative_share": view["negative_share"], "volume": view["volume"]}
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
