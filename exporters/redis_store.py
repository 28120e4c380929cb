"""Redis aggregate store: absolute per-partition partials, fenced by applied offsets.

Layout (see docs/redis.md; names from stream_app.pipeline.keys):
  {prefix}:agg:{key}:{minute}          hash  field "{topic}:{partition}" -> "neg,neu,pos,score_sum"
  {prefix}:pstate:{topic}:{partition}  hash  offset, watermark, late, updated: what that partition applied
  {prefix}:keys                        zset  aggregate key -> newest minute written
One batch is one MULTI/EXEC guarded by WATCH on the partition-state keys it advances: if a
zombie worker wrote the same partition meanwhile, EXEC aborts and the batch is re-read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from stream_app.pipeline.counts import (
    CountedRecord,
    Counts,
    PartitionDelta,
    PartitionState,
    deltas_by_partition,
    minute_of,
)
from stream_app.pipeline.keys import RedisKeys, partition_field


class AggregateStore(Protocol):
    """The aggregate-store seam. Writes: apply a batch durably (before its offsets may commit)
    and say what each partition already applied. Reads: per-minute totals and the key index."""

    async def apply(self, records: Sequence[CountedRecord]) -> int: ...

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    async def range_counts(self, key: str, first_minute: int, last_minute: int) -> dict[int, Counts]: ...

    async def keys(self, prefix: str = "") -> list[str]: ...

    async def close(self) -> None: ...


def default_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=8)


def connect(url: str, retry: Retry | None = None) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        retry=retry or default_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_timeout=10,
        health_check_interval=30,
    )


class RedisAggregateStore:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "sm",
        retention_s: int = 7 * 86400,
        allowed_lateness_s: float = float("inf"),
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.names = RedisKeys(prefix)
        self.retention_s = retention_s
        self.allowed_lateness_s = allowed_lateness_s
        self.late_applied = 0

    def bucket_key(self, key: str, minute: int) -> str:
        return self.names.bucket(key, minute)

    def state_key(self, topic: str, partition: int) -> str:
        return self.names.partition_state(topic, partition)

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        """Returns how many records were new. Safe to call again with the same records."""
        if not records:
            return 0
        partitions = sorted({(r.topic, r.partition) for r in records})
        state_keys = [self.state_key(t, p) for t, p in partitions]
        while True:
            async with self.client.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(*state_keys)
                    applied = await self._read_states(partitions)
                    deltas = deltas_by_partition(records, applied, self.allowed_lateness_s)
                    if not deltas:
                        await tx.unwatch()  # type: ignore[no-untyped-call]
                        return 0
                    current = await self._read_partials(deltas)
                    tx.multi()  # type: ignore[no-untyped-call]
                    fresh = 0
                    newest: dict[str, int] = {}  # one ZADD GT for the batch: the same index, fewer commands
                    for (topic, partition), delta in deltas.items():
                        field = partition_field(topic, partition)
                        for (key, minute), added in delta.buckets.items():
                            bucket = self.bucket_key(key, minute)
                            tx.hset(bucket, field, current[(bucket, field)].merge(added).encode())
                            tx.expire(bucket, self.retention_s)
                            newest[key] = max(minute, newest.get(key, minute))
                        state = delta.state
                        fresh += delta.records
                        tx.hset(
                            self.state_key(topic, partition),
                            mapping={
                                "offset": state.offset,
                                "watermark": repr(state.watermark),
                                "late": state.late,
                                "updated": repr(time.time()),  # wall clock: tells idle partitions apart
                            },
                        )
                    if newest:
                        tx.zadd(self.names.index(), newest, gt=True)
                    await tx.execute()
                    self.late_applied += sum(
                        d.state.late - applied.get(tp, PartitionState()).late for tp, d in deltas.items()
                    )
                    return fresh
                except WatchError:
                    continue

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: state.offset for tp, state in (await self._read_states(list(partitions))).items()}

    async def _read_states(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], PartitionState]:
        async with self.client.pipeline(transaction=False) as reads:
            for topic, partition in partitions:
                reads.hmget(self.state_key(topic, partition), ["offset", "watermark", "late"])
            rows = await reads.execute()
        return {
            tp: PartitionState(int(row[0]), float(row[1]), int(row[2]))
            for tp, row in zip(partitions, rows, strict=True)
            if row[0] is not None
        }

    async def _read_partials(self, deltas: dict[tuple[str, int], PartitionDelta]) -> dict[tuple[str, str], Counts]:
        wanted = [
            (self.bucket_key(key, minute), partition_field(topic, partition))
            for (topic, partition), delta in deltas.items()
            for (key, minute) in delta.buckets
        ]
        async with self.client.pipeline(transaction=False) as reads:
            for bucket, field in wanted:
                reads.hget(bucket, field)
            values = await reads.execute()
        return {pair: Counts.decode(v) for pair, v in zip(wanted, values, strict=True)}

    async def minute_counts(self, key: str, minute: int) -> Counts:
        """Totals of one aggregate key for one minute, summed over partitions."""
        return (await self.range_counts(key, minute_of(minute), minute_of(minute)))[minute_of(minute)]

    async def range_counts(self, key: str, first_minute: int, last_minute: int) -> dict[int, Counts]:
        """Per-minute totals of `key` for every minute in [first, last], one pipelined read."""
        minutes = list(range(minute_of(first_minute), minute_of(last_minute) + 60, 60))
        async with self.client.pipeline(transaction=False) as reads:
            for minute in minutes:
                reads.hvals(self.bucket_key(key, minute))
            rows = await reads.execute()
        out: dict[int, Counts] = {}
        for minute, partials in zip(minutes, rows, strict=True):
            total = Counts()
            for raw in partials:
                total = total.merge(Counts.decode(raw))
            out[minute] = total
        return out

    async def keys(self, prefix: str = "") -> list[str]:
        members: list[bytes] = await self.client.zrange(self.names.index(), 0, -1)  # type: ignore[assignment]
        return sorted(n for n in (m.decode() for m in members) if n.startswith(prefix))

    async def watermarks(self) -> list[tuple[float, float]]:
        """Per partition: the newest event time applied, and when (wall clock) it last applied a
        batch. Alerting's event-time clock is built from these."""
        keys = [k async for k in self.client.scan_iter(match=self.names.partition_states_pattern(), count=500)]
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as reads:
            for key in keys:
                reads.hmget(key, ["watermark", "updated"])
            rows = await reads.execute()
        return [(float(w), float(u or 0.0)) for w, u in rows if w is not None]

    async def late_records(self) -> int:
        total = 0
        async for state_key in self.client.scan_iter(match=self.names.partition_states_pattern(), count=500):
            raw = await self.client.hget(state_key, "late")
            total += int(raw or 0)
        return total

    async def close(self) -> None:
        await self.client.aclose()
