"""Per-entity negative-spike detection over minute buckets. Pure: no clock, I/O or framework.

The detector steps through event-time minutes. For each minute it updates a short sliding
window (volume and negative share), a Bernoulli CUSUM against the baseline share, and, with
minutes leaving the short window, the baseline itself:

* baseline share p0 = the EWMA share, or the same-hour share where that is significantly
  higher: the hour of the week once two previous weeks have enough posts in that hour, else
  the hour of the day once two previous days have. That keeps daily and weekly cycles from
  paging, while a one-off spike yesterday does not hide one today;
* the CUSUM tests H1: p1 = max(spike_ratio·p0, p0 + min_abs_increase) against H0: p0;
* it fires when the CUSUM has stayed above `cusum_threshold` for `confirm_minutes` minutes in
  a row (noise crosses briefly; a spike keeps climbing) and every guard holds: the baseline has
  warmed up, the window has `min_volume` posts, its share is at least `min_abs_increase`
  above p0, its Wilson lower bound is above p0, and no cooldown is running;
* it resolves (hysteresis) when the window share falls to p0 + `resolve_abs_increase`, or
  the entity goes quiet. A cooldown then holds off the next firing.

Minutes seen while an alert fires never enter the EWMA, so a long spike cannot teach the
detector that it is normal; the seasonal slots do learn them, so a pattern that recurs at the
same hour stops paging once it has happened on two days. All state is in `EntityState`, which round-trips through JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stream_app.alerting.stats import cusum_step, wilson_bounds, z_score
from stream_app.errors import ConfigError

Status = Literal["ok", "firing"]
Severity = Literal["warning", "critical"]
MINUTE = 60


@dataclass(frozen=True)
class DetectorParams:
    """Tunables; defaults were chosen with `alerts evaluate` on the generated suite (docs/alerting.md)."""

    short_window_min: int = 5
    min_volume: int = 25
    min_abs_increase: float = 0.05
    spike_ratio: float = 2.0
    cusum_threshold: float = 7.0
    confirm_z: float = 1.645
    resolve_abs_increase: float = 0.03
    cooldown_min: int = 30
    baseline_half_life_min: float = 180.0
    min_baseline_posts: float = 150.0
    seasonal_min_posts: float = 40.0
    critical_ratio: float = 2.5
    confirm_minutes: int = 3

    def with_overrides(self, overrides: Mapping[str, Any]) -> DetectorParams:
        """Per-entity overrides from the watch-list (`alerts:` mapping); unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown alert override(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


@dataclass
class Slot:
    """Counts for one seasonal slot (an hour of the week or of the day): the current period and
    the two complete periods before it."""

    last_neg: int = 0
    last_total: int = 0
    before_neg: int = 0
    before_total: int = 0
    cur_neg: int = 0
    cur_total: int = 0
    period: int = -1

    def add(self, period: int, negatives: int, volume: int) -> None:
        if period != self.period:
            if self.period >= 0:
                self.before_neg, self.before_total = self.last_neg, self.last_total
                self.last_neg, self.last_total = self.cur_neg, self.cur_total
            self.cur_neg, self.cur_total, self.period = 0, 0, period
        self.cur_neg += negatives
        self.cur_total += volume

    def estimate(self, period: int, min_posts: float) -> tuple[float, float] | None:
        """(share, posts) of the same slot in the two previous periods, the lower of the two.

        Two periods, because one is not a pattern: the lower share of both is high only when
        the pattern recurred, so a one-off spike does not blind the detector a day later.
        The current period is left out: it may hold the spike being judged."""
        if 0 <= self.period < period:  # the stored "current" period is already history
            history = [(self.cur_neg, self.cur_total), (self.last_neg, self.last_total)]
        else:
            history = [(self.last_neg, self.last_total), (self.before_neg, self.before_total)]
        if any(total < min_posts for _, total in history):
            return None
        return min((neg / total, float(total)) for neg, total in history)


@dataclass
class EntityState:
    last_minute: int | None = None
    window: list[list[int]] = field(default_factory=list)  # [minute, negatives, volume, excluded]
    ewma_neg: float = 0.0
    ewma_total: float = 0.0
    cusum: float = 0.0
    cusum_start: int | None = None
    above: int = 0
    status: Status = "ok"
    alert_id: str | None = None
    fired_at: int | None = None
    started_at: int | None = None
    severity: Severity | None = None
    fired_baseline: float | None = None
    cooldown_until: int = 0
    hour_of_week: dict[str, Slot] = field(default_factory=dict)
    hour_of_day: dict[str, Slot] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntityState:
        values = dict(data)
        for name in ("hour_of_week", "hour_of_day"):
            values[name] = {k: Slot(**v) for k, v in values.get(name, {}).items()}
        return cls(**values)


@dataclass(frozen=True)
class Evidence:
    """What the alert reports about the minute it was decided in."""

    minute: int
    window_negatives: int
    window_volume: int
    window_share: float
    baseline_share: float
    baseline_volume: float
    cusum: float
    wilson_lower: float
    z: float


@dataclass(frozen=True)
class Transition:
    """A firing or a resolution. `at` is when it was decided: the end of the evaluated minute."""

    entity: str
    status: Literal["firing", "resolved"]
    alert_id: str
    severity: Severity
    started_at: int
    at: int
    evidence: Evidence


def alert_id(entity: str, fired_minute: int) -> str:
    """Stable across restarts and replays: the same spike decided at the same minute gets the same id."""
    return hashlib.sha256(f"{entity}\x00{fired_minute}".encode()).hexdigest()[:20]


class SpikeDetector:
    def __init__(self, params: DetectorParams) -> None:
        self.params = params
        self.decay = 0.5 ** (1.0 / params.baseline_half_life_min)

    def baseline_share(self, state: EntityState, minute: int) -> float | None:
        """The EWMA share, raised to the same-hour share when that is significantly higher
        (two standard errors): taking the max unconditionally would bias p0 upwards by the
        seasonal estimate's own noise and cost recall on every stationary entity."""
        if state.ewma_total < self.params.min_baseline_posts:
            return None
        share = state.ewma_neg / state.ewma_total
        hour = minute // 3600
        week_slot = state.hour_of_week.get(str(hour % 168))
        day_slot = state.hour_of_day.get(str(hour % 24))
        seasonal = week_slot.estimate(minute // (7 * 86400), self.params.seasonal_min_posts) if week_slot else None
        if seasonal is None and day_slot is not None:
            seasonal = day_slot.estimate(minute // 86400, self.params.seasonal_min_posts)
        if seasonal is not None:
            seasonal_share, posts = seasonal
            if seasonal_share - share > 2 * math.sqrt(max(seasonal_share * (1 - seasonal_share), 1e-4) / posts):
                share = seasonal_share
        return min(0.95, max(0.005, share))

    def _learn(self, state: EntityState, minute: int, negatives: int, volume: int, excluded: bool) -> None:
        """Seasonal slots learn every minute, so a pattern that recurs daily or weekly becomes
        the norm even though it fired the first time; the EWMA skips minutes an alert covered."""
        if not excluded:
            state.ewma_neg = state.ewma_neg * self.decay + negatives
            state.ewma_total = state.ewma_total * self.decay + volume
        if volume:
            hour = minute // 3600
            state.hour_of_week.setdefault(str(hour % 168), Slot()).add(minute // (7 * 86400), negatives, volume)
            state.hour_of_day.setdefault(str(hour % 24), Slot()).add(minute // 86400, negatives, volume)

    def step(self, entity: str, state: EntityState, minute: int, negatives: int, volume: int) -> Transition | None:
        """Feed one minute (epoch seconds of its start, strictly increasing per entity)."""
        p = self.params
        if state.last_minute is not None and minute <= state.last_minute:
            return None  # already seen: replays after a restart are no-ops
        if state.last_minute is not None and minute - state.last_minute > MINUTE:
            gap = (minute - state.last_minute) // MINUTE - 1
            self._evict(state, minute - p.short_window_min * MINUTE)
            state.ewma_neg *= self.decay**gap
            state.ewma_total *= self.decay**gap
        state.last_minute = minute
        state.window.append([minute, negatives, volume, int(state.status == "firing")])
        self._evict(state, minute - p.short_window_min * MINUTE)
        k = sum(row[1] for row in state.window)
        n = sum(row[2] for row in state.window)
        p0 = self.baseline_share(state, minute)
        if p0 is None:
            return None
        p1 = min(0.99, max(p.spike_ratio * p0, p0 + p.min_abs_increase))
        before = state.cusum
        state.cusum = cusum_step(state.cusum, negatives, volume, p0, p1)
        if before == 0.0 and state.cusum > 0.0:
            state.cusum_start = minute
        elif state.cusum == 0.0:
            state.cusum_start = None
        share = k / n if n else 0.0
        lower, _ = wilson_bounds(k, n, p.confirm_z)
        evidence = Evidence(
            minute,
            k,
            n,
            round(share, 4),
            round(p0, 4),
            round(state.ewma_total * (1 - self.decay) * p.short_window_min, 2),
            round(state.cusum, 3),
            round(lower, 4),
            round(z_score(k, n, p0), 3),
        )
        if state.status == "ok":
            return self._maybe_fire(entity, state, evidence, p0)
        return self._maybe_resolve(entity, state, evidence)

    def _maybe_fire(self, entity: str, state: EntityState, ev: Evidence, p0: float) -> Transition | None:
        p = self.params
        state.above = state.above + 1 if state.cusum >= p.cusum_threshold else 0
        if not (
            state.above >= p.confirm_minutes
            and ev.window_volume >= p.min_volume
            and ev.window_share - p0 >= p.min_abs_increase
            and ev.wilson_lower > p0
            and ev.minute >= state.cooldown_until
        ):
            return None
        critical = ev.window_share >= min(0.95, p.critical_ratio * p0) and ev.wilson_lower >= p.spike_ratio * p0
        severity: Severity = "critical" if critical else "warning"
        window_start = ev.minute - (p.short_window_min - 1) * MINUTE
        started = min(state.cusum_start or window_start, window_start)
        state.status, state.severity, state.fired_at, state.started_at = "firing", severity, ev.minute, started
        state.alert_id = alert_id(entity, ev.minute)
        state.fired_baseline = p0
        for row in state.window:
            row[3] = 1  # the spike's first minutes must not leak into the baseline either
        return Transition(entity, "firing", state.alert_id, severity, started, ev.minute + MINUTE, ev)

    def _maybe_resolve(self, entity: str, state: EntityState, ev: Evidence) -> Transition | None:
        p = self.params
        baseline = state.fired_baseline if state.fired_baseline is not None else ev.baseline_share
        if ev.window_volume > 0 and ev.window_share > baseline + p.resolve_abs_increase:
            return None
        assert state.alert_id is not None and state.severity is not None and state.started_at is not None  # noqa: S101 - narrows types; a firing state always has all three
        transition = Transition(
            entity, "resolved", state.alert_id, state.severity, state.started_at, ev.minute + MINUTE, ev
        )
        state.status, state.cusum, state.cusum_start, state.above = "ok", 0.0, None, 0
        state.cooldown_until = ev.minute + p.cooldown_min * MINUTE
        state.alert_id = state.severity = state.fired_at = state.started_at = state.fired_baseline = None
        return transition

    def _evict(self, state: EntityState, before_minute: int) -> None:
        """Minutes leaving the short window join the baseline (see `_learn`)."""
        keep = []
        for row in state.window:
            if row[0] > before_minute:
                keep.append(row)
            else:
                self._learn(state, row[0], row[1], row[2], excluded=bool(row[3]))
        state.window = keep
