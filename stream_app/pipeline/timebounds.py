"""Event time is bounded by processing time.

A record dated too far ahead (a producer's clock, a typo, year 9999) would raise its
partition's watermark and make the valid records behind it late, and would drag the alert
detector's event-time clock into the future. A record older than the aggregates' retention
would land in a bucket nobody can read. Both are the record's own content, so both are dead
letters with a reason (`future_timestamp`, `ancient_timestamp`), never silently clamped: the
dead-letter topic keeps them for a replay once the producer is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stream_app.errors import InvalidRecord


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """`max_future_s`: how far ahead of processing time an event may be (clock skew).
    `max_age_s`: how far behind; 0 turns the lower bound off."""

    max_future_s: float = 300.0
    max_age_s: float = 7 * 86400.0

    def check(self, created_at: datetime, now: float) -> None:
        """Raise `InvalidRecord` when `created_at` lies outside [now - max_age, now + max_future]."""
        ts = created_at.timestamp()
        if ts > now + self.max_future_s:
            raise InvalidRecord(
                "future_timestamp",
                f"created_at {created_at.isoformat()} is {ts - now:.0f} s ahead of processing time "
                f"(allowed skew {self.max_future_s:.0f} s)",
            )
        if self.max_age_s and ts < now - self.max_age_s:
            raise InvalidRecord(
                "ancient_timestamp",
                f"created_at {created_at.isoformat()} is {now - ts:.0f} s old (limit {self.max_age_s:.0f} s)",
            )


def clamp_to_now(event_ts: float, now: float) -> float:
    """An event-time clock never runs ahead of processing time."""
    return min(event_ts, now)
