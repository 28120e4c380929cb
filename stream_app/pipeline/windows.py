"""Sliding windows built from minute buckets, and the bounded policy for non-watch-list entities."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from stream_app.pipeline.counts import Counts, minute_of

# The windows the store keeps a leaderboard for (`/top`, the live page's busiest entities).
LEADERBOARD_WINDOWS_MIN: tuple[int, ...] = (5, 15, 60, 360, 1440)
# /top and rankings leave out entities with fewer posts than this over the window: one angry
# post is a negative share of 1.0, which says nothing. The store ranks by share from here up.
TOP_MIN_VOLUME = 10


def leaderboard_windows_message(kept: tuple[int, ...], asked: int) -> str:
    shown = ", ".join(f"{w}m" if w < 60 else f"{w // 60}h" for w in kept)
    return f"the leaderboard keeps the windows {shown}; a {asked}-minute window is not one of them"


_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_window(text: str) -> int:
    """'5m', '1h', '24h', '7d' -> minutes. Raises ValueError with a readable message."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"bad window {text!r}: use a positive number followed by m, h or d, e.g. 5m or 24h")
    minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2)]
    if minutes > 7 * 1440:
        raise ValueError(f"window {text!r} is longer than the 7-day maximum")
    return minutes


def window_minutes(now_ts: float, window_min: int) -> tuple[int, int]:
    """The first and last minute bucket of the window ending in the minute of `now_ts`."""
    last = minute_of(now_ts)
    return last - 60 * (window_min - 1), last


def sum_buckets(buckets: Mapping[int, Counts], first: int, last: int) -> Counts:
    total = Counts()
    for minute, counts in buckets.items():
        if first <= minute <= last:
            total = total.merge(counts)
    return total


def series(buckets: Mapping[int, Counts], first: int, last: int, step_min: int) -> list[tuple[int, Counts]]:
    """Consecutive windows of `step_min` minutes from `first`, each summed from its buckets
    (minute or hour buckets, keyed by their start). One pass over the buckets: a day at 1-minute
    steps is 1,440 windows, and summing each from all the buckets would be quadratic."""
    step = 60 * step_min
    starts = list(range(first, last + 1, step))
    totals = [Counts() for _ in starts]
    for minute, counts in buckets.items():
        if first <= minute <= last:
            index = (minute - first) // step
            totals[index] = totals[index].merge(counts)
    return list(zip(starts, totals, strict=True))


class EntityAdmission:
    """Bounds non-watch-list entities: one is tracked once mentioned `min_mentions` times and
    while fewer than `max_tracked` are; watch-list entities always are. Candidate counts live
    in a bounded counter that halves itself when full, so memory stays O(max_candidates)."""

    def __init__(
        self, watch: Iterable[str], max_tracked: int = 1000, min_mentions: int = 3, max_candidates: int = 20_000
    ) -> None:
        self.watch = set(watch)
        self.max_tracked = max_tracked
        self.min_mentions = min_mentions
        self.max_candidates = max_candidates
        self.tracked: set[str] = set()
        self._candidates: Counter[str] = Counter()
        self.dropped = 0

    def filter(self, entities: Iterable[str]) -> list[str]:
        kept = []
        for entity in entities:
            if entity in self.watch or entity in self.tracked:
                kept.append(entity)
                continue
            self._candidates[entity] += 1
            if self._candidates[entity] >= self.min_mentions and len(self.tracked) < self.max_tracked:
                self.tracked.add(entity)
                del self._candidates[entity]
                kept.append(entity)
                continue
            self.dropped += 1
            if len(self._candidates) > self.max_candidates:
                self._candidates = Counter({k: v // 2 for k, v in self._candidates.items() if v // 2})
        return kept
