"""Rebuilding the aggregates from the scored-events topic: the upgrade path and disaster recovery.

Every `ScoredEvent` carries where it came from (input topic, partition, offset) and which entities
it was counted for, so the events hold everything the write path needs. Grouped by input
partition, sorted by offset, and with one event per offset (the last one published: the one the
store counted), they go through the store's own fenced write path, which applies the lateness rule
in offset order as the live worker did. So a rebuild equals the batch oracle, a store that already
holds some of it skips what it holds, and the workers resume from the fences it leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from stream_app.pipeline.counts import CountedRecord
from stream_app.pipeline.keys import record_keys

Origin = tuple[str, int]


def counted_record(event: Mapping[str, Any]) -> CountedRecord | None:
    """The record a scored event fed, or None for an event written before events said so."""
    if event.get("topic") is None or event.get("offset") is None or event.get("counted") is None:
        return None
    keys = record_keys(str(event["platform"]).lower(), list(event["counted"]))
    created = datetime.fromisoformat(str(event["created_at"])).timestamp()
    return CountedRecord(
        str(event["topic"]),
        int(event["partition"]),
        int(event["offset"]),
        keys,
        created,
        str(event["label"]),
        float(event["score"]),
    )


def dead_record(letter: Mapping[str, Any]) -> CountedRecord:
    """A dead letter feeds no aggregate but moves its partition's fence, as it did live."""
    return CountedRecord(str(letter["topic"]), int(letter["partition"]), int(letter["offset"]), (), 0.0, "neutral", 0.0)


def by_origin(records: Iterable[CountedRecord]) -> dict[Origin, list[CountedRecord]]:
    """One record per (partition, offset), the last seen winning; each partition in offset order."""
    latest: dict[tuple[str, int, int], CountedRecord] = {}
    for record in records:
        latest[(record.topic, record.partition, record.offset)] = record
    out: dict[Origin, list[CountedRecord]] = {}
    for (topic, partition, _), record in sorted(latest.items()):
        out.setdefault((topic, partition), []).append(record)
    return out


def batches(partitions: Mapping[Origin, list[CountedRecord]], size: int) -> Iterator[list[CountedRecord]]:
    """Batches that walk every partition forward together, each in offset order."""
    cursors = dict.fromkeys(partitions, 0)
    while any(cursors[p] < len(records) for p, records in partitions.items()):
        batch: list[CountedRecord] = []
        for origin, records in partitions.items():
            start = cursors[origin]
            batch.extend(records[start : start + size])
            cursors[origin] = start + size
        yield batch
