"""The live detector: steps every entity through closed event-time minutes read from the store.

One detector runs per app, wherever the Redis leadership lease is; any worker can take over
and continues from the state the last one saved. A minute is *closed* once every busy
partition's event-time watermark is `settle_s` past its end (see `closed_minute`), so the
detector sees the same counts a batch recomputation would.

Cost per closed minute follows the entities that have posts: their minute is read for all of
them in one pipeline (`minute_of_many`), each steps in memory, and the leader keeps their states
in memory between ticks. Saving is sized to match: a state is saved when its entity fired or
resolved (with the alert, in one fenced transaction), and otherwise once every
`checkpoint_ticks` ticks in rotation. A leader that takes over loads the saved states and
replays the few minutes since each was saved from the store: the detector is deterministic,
so the replay decides what the old leader decided, and an alert it had already queued keeps
its id (publication is at least once).
Per tick: re-publish anything left in the outbox, step, save, publish to the alerts topic, hand
copies to the sinks, and clear the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.models import Alert
from stream_app.alerting.detector import MINUTE, DetectorParams, EntityState, SpikeDetector, Transition
from stream_app.alerting.explain import build_alert
from stream_app.pipeline.counts import Counts
from stream_app.pipeline.keys import entity_key
from stream_app.pipeline.ports import AggregateStore, PartitionProgress, Sink
from stream_app.pipeline.queries import window_counts
from stream_app.pipeline.routing import entity_domain
from stream_app.pipeline.samples import PostSample
from stream_app.pipeline.timebounds import clamp_to_now

log = logging.getLogger(__name__)
READ_CHUNK_MIN = 1440
DYNAMIC_HISTORY_MIN = 120


class StateStore(Protocol):
    async def lead(self) -> bool: ...

    async def load(self, entities: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def save(self, states: Mapping[str, bytes], alerts: Sequence[Alert]) -> bool:
        """Store the states (`EntityState.dump()`'s JSON) and queue the alerts, only while leading."""
        ...

    async def outbox(self) -> list[Alert]: ...

    async def published(self, alert: Alert) -> None: ...

    async def active(self) -> list[Alert]: ...


class PostSource(Protocol):
    async def recent(self, entity: str, until: float) -> Sequence[PostSample]: ...


class AlertObserver(Protocol):
    def alert_emitted(self, alert: Alert) -> None: ...


class _Quiet:
    def alert_emitted(self, alert: Alert) -> None:
        return None


def closed_minute_of(progress: Sequence[PartitionProgress], now: float, idle_s: float, settle_s: float) -> int | None:
    return closed_minute([(p.watermark, p.updated) for p in progress], now, idle_s, settle_s)


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
    counts: AggregateStore
    state: StateStore
    posts: PostSource
    publisher: Sink[Alert]  # the alerts topic: written first, awaited (the record of truth)
    sinks: Sink[Alert]  # copies: the webhook and Alertmanager (Fanout), queued
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
    resend: Sink[Alert] | None = None  # Alertmanager forgets a firing alert unless it is sent again
    checkpoint_ticks: int = 10
    # Per-domain label floors of the scoring model (its calibration), None when the floor is set
    # by hand (SM_ALERT_LABEL_FLOOR) or the labels are given; `entity_domains`: watch-list domains.
    label_floors: Mapping[str, float] | None = None
    entity_domains: Mapping[str, str] = field(default_factory=dict)
    _last_resend: float = field(default_factory=time.monotonic)
    _states: dict[str, EntityState] | None = None  # the leader's working copy
    _ticks: int = 0
    _detectors: dict[DetectorParams, SpikeDetector] = field(default_factory=dict)
    _floored: dict[float, DetectorParams] = field(default_factory=dict)
    _keys: dict[str, str] = field(default_factory=dict)

    def params_for(self, entity: str) -> DetectorParams:
        """The entity's parameters: the watch-list's overrides, else the defaults with the label
        floor of the head that scores the entity's posts."""
        if entity in self.overrides:
            return self.overrides[entity]
        if self.label_floors is None:
            return self.params
        floor = self.label_floors.get(entity_domain(entity, self.entity_domains), self.params.label_floor)
        params = self._floored.get(floor)
        if params is None:  # built once per floor, not per call: this runs for every entity every tick
            params = self._floored[floor] = dataclasses.replace(self.params, label_floor=floor)
        return params

    def set_label_floors(self, floors: Mapping[str, float]) -> None:
        """A new model is live (POST /admin/model, SIGHUP): judge with its floors from now on."""
        if self.label_floors is not None:
            self.label_floors = dict(floors)
            self._floored.clear()

    def detector_for(self, entity: str) -> SpikeDetector:
        params = self.params_for(entity)
        detector = self._detectors.get(params)
        if detector is None:
            detector = self._detectors[params] = SpikeDetector(params)
        return detector

    def _key(self, entity: str) -> str:
        key = self._keys.get(entity)
        if key is None:
            key = self._keys[entity] = entity_key(entity)
        return key

    async def entities(self) -> list[str]:
        """The watch-list and every entity with posts in the last day (the store's 24 h leaderboard)."""
        return sorted(set(await self.counts.active(1440)) | self.watchlist)

    async def tick(self) -> list[Alert]:
        """One round; returns the alerts it published. Safe to call from any number of workers."""
        if not await self.state.lead():
            self._states = None  # a later leadership starts from what was saved, not from this copy
            return []
        await self._flush_outbox()
        await self._resend_active()
        closed = closed_minute_of(await self.counts.progress(), time.time(), self.idle_s, self.settle_s)
        if closed is None:
            return []
        entities = await self.entities()
        states = await self._working_states(entities)
        behind = [e for e in entities if (states[e].last_minute or 0) < closed]
        if not behind:
            return []
        changed: set[str] = set()
        alerts: list[Alert] = []
        for entity, transition in await self._advance(behind, states, closed):
            changed.add(entity)
            alerts.append(await self._explain(transition))
        self._ticks += 1
        due = {e for e in behind if _rotation(e, self.checkpoint_ticks) == self._ticks % self.checkpoint_ticks}
        gone = set(states) - set(entities)  # quiet for a day: saved once more, then out of memory
        to_save = {e: states[e].dump() for e in sorted(changed | due | gone)}
        if (to_save or alerts) and not await self.state.save(to_save, alerts):
            log.warning("lost the detector lease mid-tick; another worker carries on")
            self._states = None
            return []
        for entity in gone:
            del states[entity]
            self._keys.pop(entity, None)
        return await self._flush_outbox()

    async def _working_states(self, entities: list[str]) -> dict[str, EntityState]:
        """The leader's states; saved ones are loaded once, when an entity is first seen."""
        if self._states is None:
            self._states = {}
        missing = [e for e in entities if e not in self._states]
        if missing:
            saved = await self.state.load(missing)
            for entity in missing:
                self._states[entity] = self._restore(entity, saved.get(entity))
        return self._states

    def _restore(self, entity: str, saved: dict[str, Any] | None) -> EntityState:
        if saved is None:
            return EntityState()
        try:
            return EntityState.from_json(saved)
        except (TypeError, KeyError, ValueError):  # written by an incompatible version
            log.warning("discarding unreadable detector state for %s; its baseline warms up again", entity)
            return EntityState()

    async def _advance(
        self, entities: list[str], states: Mapping[str, EntityState], closed: int
    ) -> list[tuple[str, Transition]]:
        """Entities one minute behind (the usual case) read that minute together, in one pipeline;
        the others (new, or a new leader replaying) read their own range, a day at a time."""
        out: list[tuple[str, Transition]] = []
        current: list[str] = []
        others: list[str] = []  # split before stepping: a stepped entity is no longer one minute behind
        for entity in entities:
            (current if states[entity].last_minute == closed - MINUTE else others).append(entity)
        keys = [self._key(e) for e in current]
        counts = await self.counts.minute_of_many(keys, closed)
        empty = Counts()
        for index, (entity, key) in enumerate(zip(current, keys, strict=True)):
            found = counts.get(key, empty)
            transition = self.detector_for(entity).step(entity, states[entity], closed, found.negative, found.volume)
            if transition is not None:
                out.append((entity, transition))
            if index % 500 == 499:
                await asyncio.sleep(0)  # the stream shares this event loop
        for entity in others:
            out.extend((entity, t) for t in await self._replay(entity, states[entity], closed))
            await asyncio.sleep(0)
        return out

    async def _replay(self, entity: str, state: EntityState, closed: int) -> list[Transition]:
        detector = self.detector_for(entity)
        history = self.history_min if entity in self.watchlist else min(self.history_min, DYNAMIC_HISTORY_MIN)
        first = state.last_minute + MINUTE if state.last_minute is not None else closed - (history - 1) * MINUTE
        first = max(first, closed - (self.history_min - 1) * MINUTE)  # older minutes: decayed as a gap
        out = []
        for start in range(first, closed + MINUTE, READ_CHUNK_MIN * MINUTE):
            end = min(closed, start + (READ_CHUNK_MIN - 1) * MINUTE)
            buckets = await self.counts.minutes(entity_key(entity), start, end)
            for minute in range(start, end + MINUTE, MINUTE):
                counts = buckets.get(minute, Counts())
                transition = detector.step(entity, state, minute, counts.negative, counts.volume)
                if transition is not None:
                    out.append(transition)
        return out

    async def _explain(self, transition: Transition) -> Alert:
        params = self.params_for(transition.entity)
        window_first = transition.evidence.minute - (transition.evidence.window_min - 1) * MINUTE
        sources: dict[str, Counts] = {}
        try:
            for source in await self.counts.entity_sources(transition.entity):
                key = entity_key(transition.entity, source)
                sources[source] = await window_counts(self.counts, key, window_first, transition.evidence.minute)
            posts = await self.posts.recent(transition.entity, transition.at)
        except Exception:  # an explanation is best effort; the alert itself is not
            log.warning("could not gather the explanation for %s", transition.entity, exc_info=True)
            posts = []
        words = self.entity_words.get(transition.entity, frozenset(transition.entity.lower().split()))
        return build_alert(transition, params, posts, sources, self.dashboard_url, words)

    async def _flush_outbox(self) -> list[Alert]:
        published = []
        for alert in await self.state.outbox():
            await self.publisher.write([alert])  # raises if Kafka is down: the outbox keeps it
            await self.sinks.write([alert])
            await self.state.published(alert)
            self.observer.alert_emitted(alert)
            log.info("alert %s %s %s: %s", alert.status, alert.severity, alert.alert_id, alert.summary)
            published.append(alert)
        return published

    async def _resend_active(self) -> None:
        """Alertmanager forgets a firing alert after its endsAt unless it is sent again."""
        now = time.monotonic()
        if self.resend is None or now - self._last_resend < self.resend_s:
            return
        self._last_resend = now
        await self.resend.write(await self.state.active())


def _rotation(entity: str, ticks: int) -> int:
    """Which tick of `ticks` saves this entity's state (stable across processes)."""
    return zlib.crc32(entity.encode("utf-8", "surrogatepass")) % max(1, ticks)
