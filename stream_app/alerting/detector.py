"""Per-entity negative-spike detection over minute buckets. Pure: no clock, I/O or framework.

The detector steps through event-time minutes. Evidence accumulates in a Bernoulli CUSUM
against the baseline share; guards that scale with the entity's volume decide whether that
evidence may page (docs/alerting.md):

* baseline share p0 = the fast EWMA share (half-life `baseline_half_life_min`), or the slow one
  (`long_half_life_min`) while the fast one holds fewer than `min_baseline_posts` posts, raised
  to the same-hour share where that is significantly higher (hour of the week once two
  previous weeks have enough posts in that hour, else hour of the day), then raised by
  `baseline_margin_se` standard errors of its own estimate, so a thin baseline that happens to
  sit low does not turn noise into evidence. The fast share never sits below the day-long one
  (`long_share_floor`): a neutral or positive surge dilutes the fast share for hours, and the
  return to normal would otherwise read as a spike;
* the CUSUM tests H1: p1 = max(spike_ratio·p0, p0 + min_abs_increase) against H0: p0, where a
  labeller that calls a fraction `label_floor` of non-negative posts negative shrinks the
  alternative to spike_ratio·p0 - (spike_ratio - 1)·label_floor (see `alternative`); it must
  stay above its threshold for `confirm_minutes` minutes with posts in a row;
* the confirmation window is the shortest of `confirm_windows_min` (5, 15, 30, 60 min) that
  holds `min_volume` posts: a busy entity is judged on 5 minutes, a thin one on up to an hour.
  That window must hold `min_negatives` negatives, a share `min_abs_increase` above p0, and a
  Wilson lower bound above p0. No window long enough: no alert (the entity is too thin);
* it resolves (hysteresis) when the share in the window that fired falls to
  p0 + `resolve_abs_increase`, or that window empties. A cooldown then holds off the next firing.

Minutes seen while an alert fires never enter the EWMAs, so a long spike cannot teach the
detector that it is normal; the seasonal slots do learn them, so a pattern that recurs at the
same hour stops paging once it has happened on two days. Minutes join the baseline only when
they leave the longest window. All state is in `EntityState`, which round-trips through JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stream_app.alerting.state import EntityState, Severity, Slot, Status
from stream_app.alerting.stats import cusum_step, wilson_bounds, z_score
from stream_app.errors import ConfigError

__all__ = ["MINUTE", "DetectorParams", "EntityState", "Evidence", "Severity", "Slot", "SpikeDetector", "Status"]
MINUTE = 60


@dataclass(frozen=True)
class DetectorParams:
    """Tunables; defaults were chosen with `alerts evaluate` on the generated suite (docs/alerting.md)."""

    short_window_min: int = 5
    confirm_windows_min: tuple[int, ...] = (5, 15, 30, 60)
    min_volume: int = 20
    min_negatives: int = 6
    min_abs_increase: float = 0.05
    spike_ratio: float = 2.0
    cusum_threshold: float = 6.5
    confirm_z: float = 1.645
    resolve_abs_increase: float = 0.03
    cooldown_min: int = 30
    baseline_half_life_min: float = 180.0
    long_half_life_min: float = 1440.0
    min_baseline_posts: float = 150.0
    baseline_margin_se: float = 0.5
    seasonal_min_posts: float = 40.0
    critical_ratio: float = 2.5
    confirm_minutes: int = 3
    threshold_reference_per_hour: float = 60.0
    threshold_volume_slope: float = 1.25
    threshold_floor: float = 4.0
    learn_volume_cap: float = 2.0
    label_floor: float = 0.0
    long_share_floor: bool = True
    seasonal_z: float = 2.0

    def __post_init__(self) -> None:
        if not self.confirm_windows_min or list(self.confirm_windows_min) != sorted(set(self.confirm_windows_min)):
            raise ConfigError("confirm_windows_min must be increasing, e.g. [5, 15, 30, 60]")
        if self.confirm_windows_min[0] < 1:
            raise ConfigError("confirm_windows_min must be at least one minute")

    def with_overrides(self, overrides: Mapping[str, Any]) -> DetectorParams:
        """Per-entity overrides from the watch-list (`alerts:` mapping); unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown alert override(s): {', '.join(sorted(unknown))}")
        values = dict(overrides)
        if "confirm_windows_min" in values:
            values["confirm_windows_min"] = tuple(values["confirm_windows_min"])
        return dataclasses.replace(self, **values)

    @property
    def longest_window_min(self) -> int:
        return max(self.confirm_windows_min[-1], self.short_window_min)


@dataclass(frozen=True)
class Evidence:
    """What the alert reports about the minute it was decided in. The `window_*` figures are
    those of the confirmation window `window_min`, chosen for the reason `why`."""

    minute: int
    window_negatives: int
    window_volume: int
    window_share: float
    baseline_share: float
    baseline_volume: float
    cusum: float
    wilson_lower: float
    z: float
    window_min: int = 5
    why: str = ""
    threshold: float = 0.0


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


def window_counts(state: EntityState, minute: int, span_min: int) -> tuple[int, int]:
    """(negatives, posts) over the `span_min` minutes ending with `minute`."""
    first = minute - (span_min - 1) * MINUTE
    k = n = 0
    for row in reversed(state.window):
        if row[0] < first:
            break
        k += row[1]
        n += row[2]
    return k, n


class SpikeDetector:
    def __init__(self, params: DetectorParams) -> None:
        self.params = params
        self.decay = 0.5 ** (1.0 / params.baseline_half_life_min)
        self.long_decay = 0.5 ** (1.0 / params.long_half_life_min)

    def baseline(self, state: EntityState, minute: int) -> tuple[float, float] | None:
        """(p0, expected posts per short window), or None until a baseline has enough posts.

        The fast EWMA follows drifts; where it is too thin (fewer than `min_baseline_posts`),
        the slow one stands in: an entity at 6 posts an hour has ~26 posts in a 3-hour
        half-life, far too few to tell 20 % from 30 %, but ~200 in a day's. The same-hour
        share raises p0 when it is higher by `seasonal_z` (2) standard errors: taking the max
        unconditionally would bias p0 upwards by the seasonal estimate's own noise."""
        p = self.params
        if state.ewma_total >= p.min_baseline_posts:
            neg, total, decay = state.ewma_neg, state.ewma_total, self.decay
        elif state.long_total >= p.min_baseline_posts:
            neg, total, decay = state.long_neg, state.long_total, self.long_decay
        else:
            return None
        share, posts = neg / total, total
        if p.long_share_floor and state.long_total >= p.min_baseline_posts:
            # A neutral or positive surge, or a quiet spell, lowers the fast share for hours;
            # the return to normal then reads as a spike. The day-long share bounds it below
            # (a no-op when the slow EWMA is already the baseline).
            share = max(share, state.long_neg / state.long_total)
        hour = minute // 3600
        week_slot = state.hour_of_week.get(str(hour % 168))
        day_slot = state.hour_of_day.get(str(hour % 24))
        seasonal = week_slot.estimate(minute // (7 * 86400), p.seasonal_min_posts) if week_slot else None
        if seasonal is None and day_slot is not None:
            seasonal = day_slot.estimate(minute // 86400, p.seasonal_min_posts)
        if seasonal is not None:
            seasonal_share, seasonal_posts = seasonal
            if seasonal_share - share > p.seasonal_z * _se(seasonal_share, seasonal_posts):
                share, posts = seasonal_share, seasonal_posts
        share += p.baseline_margin_se * _se(share, posts)
        return min(0.95, max(0.005, share)), total * (1 - decay) * p.short_window_min

    def _learn(self, state: EntityState, minute: int, negatives: int, volume: int, excluded: bool) -> None:
        """Seasonal slots learn every minute, so a pattern that recurs daily or weekly becomes
        the norm even though it fired the first time; the EWMAs skip minutes an alert covered.
        Empty minutes before the entity's first post teach nothing: a new entity is read with
        up to a day of empty history, and counting those minutes would make its real rate look
        like a surge over an almost-zero rate, so no minute would ever join the baseline."""
        if volume == 0 and state.volume_weight == 0.0:
            return
        expected = self.rate_per_minute(state)
        state.volume_ewma = state.volume_ewma * self.decay + volume
        state.volume_weight = state.volume_weight * self.decay + 1.0
        surge = expected > 0 and volume > self.params.learn_volume_cap * expected
        if not excluded and not surge:  # a surge's extra posts would dilute the share it learns
            state.ewma_neg = state.ewma_neg * self.decay + negatives
            state.ewma_total = state.ewma_total * self.decay + volume
            state.long_neg = state.long_neg * self.long_decay + negatives
            state.long_total = state.long_total * self.long_decay + volume
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
            self._evict(state, minute - p.longest_window_min * MINUTE)
            self._learn_gap(state, gap)
        state.last_minute = minute
        state.window.append([minute, negatives, volume, int(state.status == "firing")])
        self._evict(state, minute - p.longest_window_min * MINUTE)
        base = self.baseline(state, minute)
        if base is None:
            return None
        p0, expected = base
        p1 = self.alternative(p0)
        before = state.cusum
        state.cusum = cusum_step(state.cusum, negatives, volume, p0, p1)
        if before == 0.0 and state.cusum > 0.0:
            state.cusum_start = minute
        elif state.cusum == 0.0:
            state.cusum_start = None
        if state.status == "ok":
            if volume:  # persistence counts minutes with posts: an empty minute proves nothing
                state.above = state.above + 1 if state.cusum >= self.threshold(state) else 0
            return self._maybe_fire(entity, state, minute, p0, expected)
        return self._maybe_resolve(entity, state, minute, p0, expected)

    def alternative(self, p0: float) -> float:
        """The share the CUSUM tests for: the gold negative share multiplied by `spike_ratio`,
        seen through the labeller. A model labels a fraction `label_floor` of non-negative
        posts negative, so a labelled share q = f + (r - f)·s moves from q0 to
        spike_ratio·q0 - (spike_ratio - 1)·f when the true share s is multiplied by spike_ratio.
        With gold labels f = 0 and this is spike_ratio·p0."""
        p = self.params
        floor = min(p.label_floor, p0)
        return min(0.99, max(p.spike_ratio * p0 - (p.spike_ratio - 1) * floor, p0 + p.min_abs_increase))

    def rate_per_minute(self, state: EntityState) -> float:
        """Posts per minute, surges included; bias-corrected, so it is right from the first minutes."""
        return state.volume_ewma / state.volume_weight if state.volume_weight > 0 else 0.0

    def _learn_gap(self, state: EntityState, gap: int) -> None:
        """Minutes never stepped (no data read) decay the EWMAs as empty minutes would."""
        if state.volume_weight == 0.0:
            return  # nothing seen yet (see `_learn`)
        for name in ("ewma_neg", "ewma_total", "volume_ewma"):
            setattr(state, name, getattr(state, name) * self.decay**gap)
        state.volume_weight = state.volume_weight * self.decay**gap + (1 - self.decay**gap) / (1 - self.decay)
        state.long_neg *= self.long_decay**gap
        state.long_total *= self.long_decay**gap

    def threshold(self, state: EntityState) -> float:
        """The CUSUM threshold for this entity's volume. Page's CUSUM false-alarms about once per
        e^h posts, so a fixed h pages a busy entity far more often per week than a thin one; h
        grows by `threshold_volume_slope` nats per e-fold of posts per hour above the reference
        (and shrinks below it, to `threshold_floor`), which keeps the budget per entity-week."""
        p = self.params
        per_hour = 60 * self.rate_per_minute(state)
        shift = p.threshold_volume_slope * math.log(max(per_hour, 1e-3) / p.threshold_reference_per_hour)
        return max(p.threshold_floor, p.cusum_threshold + shift)

    def evidence(self, state: EntityState, minute: int, span: int, p0: float, expected: float, why: str) -> Evidence:
        k, n = window_counts(state, minute, span)
        lower, _ = wilson_bounds(k, n, self.params.confirm_z)
        return Evidence(
            minute,
            k,
            n,
            round(k / n if n else 0.0, 4),
            round(p0, 4),
            round(expected * span / self.params.short_window_min, 2),
            round(state.cusum, 3),
            round(lower, 4),
            round(z_score(k, n, p0), 3),
            span,
            why,
            round(self.threshold(state), 3),
        )

    def confirmation(self, state: EntityState, minute: int, p0: float, expected: float) -> Evidence | None:
        """The shortest window with `min_volume` posts, judged by every guard; None when no
        window is long enough. Only that one window is judged, not the best of several, so
        the guards' false-alarm rate is that of one test."""
        p = self.params
        for span in p.confirm_windows_min:
            k, n = window_counts(state, minute, span)
            if n < p.min_volume:
                continue
            why = f"shortest window with >= {p.min_volume} posts ({n} posts, {k} negative)"
            ev = self.evidence(state, minute, span, p0, expected, why)
            passed = k >= p.min_negatives and ev.window_share - p0 >= p.min_abs_increase and ev.wilson_lower > p0
            return ev if passed else None
        return None

    def _maybe_fire(
        self, entity: str, state: EntityState, minute: int, p0: float, expected: float
    ) -> Transition | None:
        p = self.params
        if state.above < p.confirm_minutes or minute < state.cooldown_until:
            return None
        ev = self.confirmation(state, minute, p0, expected)
        if ev is None:
            return None
        critical = ev.window_share >= min(0.95, p.critical_ratio * p0) and ev.wilson_lower >= p.spike_ratio * p0
        severity: Severity = "critical" if critical else "warning"
        # The change point is the CUSUM's; without one, the start of the short window.
        window_start = minute - (p.short_window_min - 1) * MINUTE
        started = min(state.cusum_start or window_start, window_start)
        state.status, state.severity, state.fired_at, state.started_at = "firing", severity, minute, started
        state.alert_id = alert_id(entity, minute)
        state.fired_baseline, state.fired_window_min = p0, ev.window_min
        for row in state.window:
            row[3] = 1  # the spike's first minutes must not leak into the baseline either
        return Transition(entity, "firing", state.alert_id, severity, started, minute + MINUTE, ev)

    def _maybe_resolve(
        self, entity: str, state: EntityState, minute: int, p0: float, expected: float
    ) -> Transition | None:
        p = self.params
        baseline = state.fired_baseline if state.fired_baseline is not None else p0
        span = state.fired_window_min or p.short_window_min
        ev = self.evidence(state, minute, span, p0, expected, f"the {span}-minute window the alert fired on")
        if ev.window_volume > 0 and ev.window_share > baseline + p.resolve_abs_increase:
            return None
        assert state.alert_id is not None and state.severity is not None and state.started_at is not None  # noqa: S101 - narrows types; a firing state always has all three
        transition = Transition(
            entity, "resolved", state.alert_id, state.severity, state.started_at, minute + MINUTE, ev
        )
        state.status, state.cusum, state.cusum_start, state.above = "ok", 0.0, None, 0
        state.cooldown_until = minute + p.cooldown_min * MINUTE
        state.alert_id = state.severity = state.fired_at = state.started_at = state.fired_baseline = None
        state.fired_window_min = None
        return transition

    def _evict(self, state: EntityState, before_minute: int) -> None:
        """Minutes leaving the longest window join the baseline (see `_learn`), oldest first.

        The window is in minute order (`step` appends strictly increasing minutes), so the rows
        that leave are a prefix: usually one row a minute, found without copying the rest."""
        window = state.window
        leaving = 0
        while leaving < len(window) and window[leaving][0] <= before_minute:
            row = window[leaving]
            self._learn(state, row[0], row[1], row[2], excluded=bool(row[3]))
            leaving += 1
        if leaving:
            del window[:leaving]


def _se(share: float, posts: float) -> float:
    """Standard error of a share estimated from `posts` posts (floored, so 0 % is not certain)."""
    return math.sqrt(max(share * (1 - share), 1e-4) / max(posts, 1.0))
