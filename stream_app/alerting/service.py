"""The live detector: steps every entity through closed event-time minutes read from Redis.

One detector runs per app, wherever the Redis leadership lease is; any worker can take over
and continues from the state the last one saved. A minute is *closed* once every busy
partition's event-time watermark is `settle_s` past its end (see `closed_minute`), so the
detector sees the same counts a batch recomputation would.
Per tick: re-publish anything left in the outbox, step, save states and new alerts in one
fenced transaction, publish to the alerts topic, hand copies to the sinks, and clear the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporters.queries import list_entities
from schemas.models import Alert
from stream_app.alerting.detector import MINUTE, DetectorParams, EntityState, SpikeDetector, Transition
from stream_app.alerting.explain import build_alert
from stream_app.pipeline.counts import Counts
from stream_app.pipeline.keys import entity_key, entity_sources_prefix, source_of
from stream_app.pipeline.samples import PostSample
from stream_app.pipeline.timebounds import clamp_to_now
from stream_app.pipeline.windows import sum_buckets

log = logging.getLogger(__name__)
READ_CHUNK_MIN = 1440
DYNAMIC_HISTORY_MIN = 120


class CountsSource(Protocol):
    async def range_counts(self, key: str, first_minute: int, last_minute: int) -> dict[int, Counts]: ...

    async def keys(self, prefix: str = "") -> list[str]: ...

    async def watermarks(self) -> list[tuple[float, float]]: ...


class StateStore(Protocol):
    async def lead(self) -> bool: ...

    async def load(self, entities: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def save(self, states: Mapping[str, dict[str, Any]], alerts: Sequence[Alert]) -> bool: ...

    async def outbox(self) -> list[Alert]: ...

    async def published(self, alert: Alert) -> None: ...

    async def active(self) -> list[Alert]: ...


class PostSource(Protocol):
    async def recent(self, entity: str, until: float) -> Sequence[PostSample]: ...


class AlertPublisher(Protocol):
    """The alerts topic: returns once the broker has the record."""

    async def publish(self, alert: Alert) -> None: ...


class AlertSinks(Protocol):
    def submit(self, alert: Alert, only: str | None = None) -> None: ...


class AlertObserver(Protocol):
    def alert_emitted(self, alert: Alert) -> None: ...


class _Quiet:
    def alert_emitted(self, alert: Alert) -> None:
        return None


def closed_minute(partitions: Sequence[tuple[float, float]], now: float, idle_s: float, settle_s: float) -> int | None:
    """The newest minute (start, epoch s) that every busy partition has moved past by `settle_s`.

    `partitions` holds (event-time watermark, wall-clock time of the last write). A partition
    with no write for `idle_s` is idle and does not hold the clock back; one that is busy but
    behind in event time (a topic replayed later than another) does. A watermark ahead of `now`
    counts as `now`: the detector's clock never runs ahead of processing time."""
    clamped = [(clamp_to_now(watermark, now), updated) for watermark, updated in partitions]
    busy = [watermark for watermark, updated in clamped if now - updated <= idle_s]
    if not busy:
        busy = [max(watermark for watermark, _ in clamped)] if clamped else []
    if not busy:
        return None
    return int((min(busy) - settle_s) // MINUTE) * MINUTE - MINUTE


@dataclass
class AlertService:
    counts: CountsSource
    state: StateStore
    posts: PostSource
    publisher: AlertPublisher
    sinks: AlertSinks
    params: DetectorParams
    overrides: Mapping[str, DetectorParams] = field(default_factory=dict)
    watchlist: frozenset[str] = frozenset()
    entity_words: Mapping[str, frozenset[str]] = field(default_factory=dict)
    idle_s: float = 60.0
    settle_s: float = 60.0
    history_min: int = 1440
    dashboard_url: str | None = None
    observer: AlertObserver = field(default_factory=_Quiet)
    resend_s: float = 60.0
    _last_resend: float = field(default_factory=time.monotonic)

    def detector_for(self, entity: str) -> SpikeDetector:
        return SpikeDetector(self.overrides.get(entity, self.params))

    async def entities(self) -> list[str]:
        return sorted(set(await list_entities(self.counts)) | self.watchlist)

    async def tick(self) -> list[Alert]:
        """One round; returns the alerts it published. Safe to call from any number of workers."""
        if not await self.state.lead():
            return []
        await self._flush_outbox()
        await self._resend_active()
        closed = closed_minute(await self.counts.watermarks(), time.time(), self.idle_s, self.settle_s)
        if closed is None:
            return []
        entities = await self.entities()
        saved = await self.state.load(entities)
        states: dict[str, dict[str, Any]] = {}
        alerts: list[Alert] = []
        for entity in entities:
            state = self._restore(entity, saved.get(entity))
            if state.last_minute is not None and state.last_minute >= closed:
                continue
            for transition in await self._advance(entity, state, closed):
                alerts.append(await self._explain(transition))
            states[entity] = state.to_json()
            await asyncio.sleep(0)  # the stream shares this event loop: let it run between entities
        if not states:
            return []
        if not await self.state.save(states, alerts):
            log.warning("lost the detector lease mid-tick; another worker carries on")
            return []
        return await self._flush_outbox()

    def _restore(self, entity: str, saved: dict[str, Any] | None) -> EntityState:
        if saved is None:
            return EntityState()
        try:
            return EntityState.from_json(saved)
        except (TypeError, KeyError, ValueError):  # written by an incompatible version
            log.warning("discarding unreadable detector state for %s; its baseline warms up again", entity)
            return EntityState()

    async def _advance(self, entity: str, state: EntityState, closed: int) -> list[Transition]:
        detector = self.detector_for(entity)
        first = (
            state.last_minute + MINUTE if state.last_minute is not None else closed - (self.history_min - 1) * MINUTE
        )
        out = []
        for start in range(first, closed + MINUTE, READ_CHUNK_MIN * MINUTE):
            end = min(closed, start + (READ_CHUNK_MIN - 1) * MINUTE)
            buckets = await self.counts.range_counts(entity_key(entity), start, end)
            for minute in range(start, end + MINUTE, MINUTE):
                counts = buckets.get(minute, Counts())
                transition = detector.step(entity, state, minute, counts.negative, counts.volume)
                if transition is not None:
                    out.append(transition)
        return out

    async def _explain(self, transition: Transition) -> Alert:
        params = self.overrides.get(transition.entity, self.params)
        window_first = transition.evidence.minute - (transition.evidence.window_min - 1) * MINUTE
        sources: dict[str, Counts] = {}
        try:
            for key in await self.counts.keys(entity_sources_prefix(transition.entity)):
                buckets = await self.counts.range_counts(key, window_first, transition.evidence.minute)
                sources[source_of(key) or ""] = sum_buckets(buckets, window_first, transition.evidence.minute)
            posts = await self.posts.recent(transition.entity, transition.at)
        except Exception:  # an explanation is best effort; the alert itself is not
            log.warning("could not gather the explanation for %s", transition.entity, exc_info=True)
            posts = []
        words = self.entity_words.get(transition.entity, frozenset(transition.entity.lower().split()))
        return build_alert(transition, params, posts, sources, self.dashboard_url, words)

    async def _flush_outbox(self) -> list[Alert]:
        published = []
        for alert in await self.state.outbox():
            await self.publisher.publish(alert)  # raises if Kafka is down: the outbox keeps it
            self.sinks.submit(alert)
            await self.state.published(alert)
            self.observer.alert_emitted(alert)
            log.info("alert %s %s %s: %s", alert.status, alert.severity, alert.alert_id, alert.summary)
            published.append(alert)
        return published

    async def _resend_active(self) -> None:
        """Alertmanager forgets a firing alert after its endsAt unless it is sent again."""
        now = time.monotonic()
        if now - self._last_resend < self.resend_s:
            return
        self._last_resend = now
        for alert in await self.state.active():
            self.sinks.submit(alert, only="alertmanager")
