"""The live detector service with in-memory fakes behind its protocols: clock, outbox, leadership."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from schemas.models import Alert
from stream_app.alerting.detector import DetectorParams
from stream_app.alerting.service import AlertService, closed_minute
from stream_app.pipeline.counts import Counts
from stream_app.pipeline.ports import PartitionProgress
from stream_app.pipeline.samples import PostSample
from stream_app.testing.memory import MemoryAggregateStore

T0 = 1_764_547_200


def test_closed_minute_waits_for_busy_partitions_only() -> None:
    now = T0 + 10_000.0
    busy_ahead, busy_behind, idle = (T0 + 600.0, now), (T0 + 300.0, now - 5), (T0 + 30.0, now - 600)
    assert closed_minute([busy_ahead, busy_behind, idle], now, idle_s=60, settle_s=0) == T0 + 240
    assert closed_minute([busy_ahead, idle], now, idle_s=60, settle_s=60) == T0 + 480
    assert closed_minute([idle, (T0 + 125.0, now - 900)], now, idle_s=60, settle_s=0) == T0 + 60  # all idle: newest
    assert closed_minute([], now, 60, 0) is None


class FakeCounts(MemoryAggregateStore):
    """A memory store fed minute by minute, whose one partition's watermark follows the feed."""

    def __init__(self) -> None:
        super().__init__()
        self.clock_at: list[PartitionProgress] = []

    def feed(self, key: str, minute: int, negatives: int, volume: int) -> None:
        self.buckets[(key, minute)] = Counts.of(negatives, volume - negatives, 0, 0.0)
        self.clock_at = [PartitionProgress("t", 0, 0, minute + 60.0 + 1, 0, time.time())]

    async def progress(self) -> list[PartitionProgress]:
        return self.clock_at


class FakeState:
    def __init__(self) -> None:
        self.leader = True
        self.states: dict[str, dict[str, Any]] = {}
        self.box: dict[str, Alert] = {}
        self.active_alerts: dict[str, Alert] = {}

    async def lead(self) -> bool:
        return self.leader

    async def load(self, entities: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {e: self.states[e] for e in entities if e in self.states}

    async def save(self, states: Mapping[str, bytes], alerts: Sequence[Alert]) -> bool:
        if not self.leader:
            return False
        self.states.update({entity: orjson.loads(state) for entity, state in states.items()})
        for alert in alerts:
            self.box[f"{alert.alert_id}:{alert.status}"] = alert
        return True

    async def outbox(self) -> list[Alert]:
        return sorted(self.box.values(), key=lambda a: a.evaluated_at)

    async def published(self, alert: Alert) -> None:
        del self.box[f"{alert.alert_id}:{alert.status}"]

    async def active(self) -> list[Alert]:
        return list(self.active_alerts.values())


class FakePosts:
    async def recent(self, entity: str, until: float) -> list[PostSample]:
        return [PostSample("p1", until - 30, "negative", -0.9, "x", "the app lost my money")]


class FakePublisher:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[Alert] = []

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[Alert]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker down")
        self.sent.extend(batch)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class FakeSinks:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, str | None]] = []

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[Alert]) -> None:
        self.submitted.extend((alert.status, None) for alert in batch)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def make(
    publisher: FakePublisher | None = None,
) -> tuple[AlertService, FakeCounts, FakeState, FakePublisher, FakeSinks]:
    counts, state, pub, sinks = FakeCounts(), FakeState(), publisher or FakePublisher(), FakeSinks()
    service = AlertService(
        counts=counts,
        state=state,
        posts=FakePosts(),
        publisher=pub,
        sinks=sinks,
        params=DetectorParams(),
        watchlist=frozenset({"Quanta Bank"}),
        settle_s=0,
        history_min=60,
        checkpoint_ticks=1,  # every state saved every tick; test_checkpoints_* covers the rotation
    )
    return service, counts, state, pub, sinks


async def feed_and_tick(
    service: AlertService, counts: FakeCounts, minutes: Sequence[tuple[int, int]], start: int
) -> list[Alert]:
    out = []
    for i, (k, n) in enumerate(minutes):
        counts.feed("ent:Quanta Bank", T0 + 60 * (start + i), k, n)
        counts.feed("ent:Quanta Bank|src:x", T0 + 60 * (start + i), k, n)
        out += await service.tick()
    return out


async def test_one_firing_and_one_resolution_with_explanations() -> None:
    service, counts, state, pub, sinks = make()
    alerts = await feed_and_tick(service, counts, [(2, 10)] * 150 + [(6, 10)] * 15 + [(2, 10)] * 25, 0)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    firing = alerts[0]
    assert firing.entity == "Quanta Bank" and firing.sources[0].source == "x"
    assert firing.top_negative_posts[0].snippet == "the app lost my money"
    assert [a.status for a in pub.sent] == ["firing", "resolved"] and not state.box
    assert sinks.submitted == [("firing", None), ("resolved", None)]
    assert state.states["Quanta Bank"]["last_minute"] == T0 + 60 * 189
    assert await service.tick() == []  # nothing new closed: nothing re-sent


async def test_a_failed_publish_stays_in_the_outbox_and_goes_out_once_later() -> None:
    service, counts, state, pub, _ = make(FakePublisher(failures=1))
    errors = 0
    for i, (k, n) in enumerate([(2, 10)] * 150 + [(6, 10)] * 15):
        counts.feed("ent:Quanta Bank", T0 + 60 * i, k, n)
        try:  # as the worker's timer does: log, and try again next tick
            await service.tick()
        except ConnectionError:
            errors += 1
            assert [a.status for a in state.box.values()] == ["firing"] and pub.sent == []
    assert errors == 1
    assert [a.status for a in pub.sent] == ["firing"] and not state.box


async def test_a_follower_does_nothing() -> None:
    service, counts, state, pub, _ = make()
    state.leader = False
    assert await feed_and_tick(service, counts, [(2, 10)] * 60 + [(8, 10)] * 10, 0) == []
    assert state.states == {} and pub.sent == []


async def test_unreadable_state_starts_fresh() -> None:
    service, counts, state, _, _ = make()
    state.states["Quanta Bank"] = {"prev_neg": 3}  # written by some older version
    counts.feed("ent:Quanta Bank", T0, 1, 5)
    await service.tick()
    assert state.states["Quanta Bank"]["last_minute"] == T0  # stepped from scratch up to the closed minute


async def test_watch_list_overrides_apply_per_entity() -> None:
    service, counts, _, pub, _ = make()
    service.overrides = {"Quanta Bank": DetectorParams().with_overrides({"min_volume": 100})}
    await feed_and_tick(service, counts, [(2, 10)] * 60 + [(8, 10)] * 10, 0)
    assert pub.sent == []  # 50 posts per window never reach this entity's minimum of 100


async def test_checkpoints_rotate_and_a_new_leader_replays_to_the_same_alerts() -> None:
    """States are saved in rotation (and on every transition); a leader that takes over from those
    checkpoints replays the minutes since from the store and decides what the first one decided."""
    minutes = [(2, 10)] * 150 + [(6, 10)] * 15 + [(2, 10)] * 25
    first, counts, state, pub, _ = make()
    first.checkpoint_ticks = 7
    first.watchlist = frozenset({"Quanta Bank", "Nimbus Air"})
    saves: list[int] = []
    save = state.save

    async def counting_save(states: Mapping[str, dict[str, Any]], alerts: Sequence[Alert]) -> bool:
        saves.append(len(states))
        return await save(states, alerts)

    state.save = counting_save  # type: ignore[method-assign]
    for i, (k, n) in enumerate(minutes[:160]):
        for entity in ("Quanta Bank", "Nimbus Air"):
            counts.feed(f"ent:{entity}", T0 + 60 * i, k, n)
        await first.tick()
    assert 0 < len([n for n in saves if n]) < 160  # not every tick saves every state
    behind = {e: s["last_minute"] for e, s in state.states.items()}
    assert all(T0 + 60 * 150 <= m <= T0 + 60 * 159 for m in behind.values())  # each saved within the rotation
    second = make()[0]
    second.counts, second.state, second.publisher, second.watchlist = counts, state, pub, first.watchlist
    for i, (k, n) in enumerate(minutes[160:], start=160):
        for entity in ("Quanta Bank", "Nimbus Air"):
            counts.feed(f"ent:{entity}", T0 + 60 * i, k, n)
        await second.tick()
    fired = [(a.entity, a.status, a.alert_id) for a in pub.sent]
    assert ("Quanta Bank", "firing") in {(e, s) for e, s, _ in fired}
    assert ("Quanta Bank", "resolved") in {(e, s) for e, s, _ in fired}
    ids = {i for e, s, i in fired if e == "Quanta Bank"}
    assert len(ids) == 1  # the replay decided the same alert (same id) as the first leader


def test_each_entity_is_judged_with_its_domains_label_floor_and_a_swap_updates_them() -> None:
    service = make()[0]
    service.label_floors = {"social": 0.13, "finance": 0.05, "reviews": 0.08}
    service.entity_domains = {"Quanta Bank": "finance"}
    service.overrides = {"Pinned": DetectorParams(label_floor=0.3)}
    assert service.params_for("Quanta Bank").label_floor == 0.05  # watch-list `domain: finance`
    assert service.params_for("$ABC").label_floor == 0.05  # a ticker
    assert service.params_for("Nimbus Air").label_floor == 0.13  # everything else: social
    assert service.params_for("Pinned").label_floor == 0.3  # a watch-list override wins
    service.set_label_floors({"social": 0.2, "finance": 0.07, "reviews": 0.1})  # the live model changed
    assert service.params_for("Nimbus Air").label_floor == 0.2 and service.params_for("$ABC").label_floor == 0.07
    assert service.detector_for("Nimbus Air").params.label_floor == 0.2


def test_a_floor_set_by_hand_is_kept_through_a_swap() -> None:
    service = make()[0]  # label_floors None: SM_ALERT_LABEL_FLOOR (or gold labels) decides
    service.set_label_floors({"social": 0.2})
    assert service.params_for("Nimbus Air") is service.params
