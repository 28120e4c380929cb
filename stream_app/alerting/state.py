"""The detector's per-entity state: JSON-serialisable, and readable across format versions.

Version 1 (before issue 12) kept a 5-minute window and one EWMA. Version 2 keeps the window
rows for the longest confirmation window, a second, slower EWMA for thin entities, and the
window an alert fired on. `EntityState.from_json` upgrades a version-1 state in place, so a
worker rolled out over a running detector carries on without re-warming every baseline or
losing an alert that is firing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Status = Literal["ok", "firing"]
Severity = Literal["warning", "critical"]
STATE_VERSION = 2


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
    version: int = STATE_VERSION
    last_minute: int | None = None
    window: list[list[int]] = field(default_factory=list)  # [minute, negatives, volume, excluded]
    ewma_neg: float = 0.0
    ewma_total: float = 0.0
    long_neg: float = 0.0  # the slow EWMA: the baseline of entities too thin for the fast one
    long_total: float = 0.0
    volume_ewma: float = 0.0  # every minute's volume, surges included: what "a surge" is measured against
    volume_weight: float = 0.0  # the same EWMA of 1 per minute, to bias-correct it while it warms up
    cusum: float = 0.0
    cusum_start: int | None = None
    above: int = 0
    status: Status = "ok"
    alert_id: str | None = None
    fired_at: int | None = None
    started_at: int | None = None
    severity: Severity | None = None
    fired_baseline: float | None = None
    fired_window_min: int | None = None  # resolution is judged on the window that fired
    cooldown_until: int = 0
    hour_of_week: dict[str, Slot] = field(default_factory=dict)
    hour_of_day: dict[str, Slot] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The same dict `dataclasses.asdict` gives, built directly: the leader checkpoints
        thousands of states a minute, and `asdict`'s deep copies were most of a tick's time."""
        out = dict(self.__dict__)
        out["window"] = [list(row) for row in self.window]
        out["hour_of_week"] = {k: dict(v.__dict__) for k, v in self.hour_of_week.items()}
        out["hour_of_day"] = {k: dict(v.__dict__) for k, v in self.hour_of_day.items()}
        return out

    def dump(self) -> bytes:
        """The JSON text of `to_json()`, serialised straight from the dataclasses (orjson writes
        a dataclass's fields in order, as `to_json` keeps them). The leader checkpoints a tenth
        of its states every tick: copying each into dicts and lists first allocated tens of
        thousands of objects a tick, and the garbage collector's full passes over every state
        in memory that they set off cost more than the copies."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntityState:
        values = dict(data)
        if int(values.get("version", 1)) < 2:
            values = _upgrade_v1(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"unknown state field(s): {sorted(unknown)}")  # a newer format: do not guess
        for name in ("hour_of_week", "hour_of_day"):
            values[name] = {k: Slot(**v) for k, v in values.get(name, {}).items()}
        return cls(**values)


def _upgrade_v1(values: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no slow EWMA: seed it with the fast one (same share, same posts, so it
    claims no more certainty than the data behind it). An alert that is firing keeps firing and
    resolves on the 5-minute window it fired on."""
    values["version"] = STATE_VERSION
    values.setdefault("long_neg", values.get("ewma_neg", 0.0))
    values.setdefault("long_total", values.get("ewma_total", 0.0))
    values.setdefault("volume_ewma", values.get("ewma_total", 0.0))
    values.setdefault("volume_weight", 1 / (1 - 0.5 ** (1 / 180)))  # a long-running v1 state: saturated
    if values.get("status") == "firing":
        values.setdefault("fired_window_min", 5)
    return values
