"""Redis aggregate store: absolute per-partition partials, fenced by applied offsets.

Layout (see docs/redis.md):
  {prefix}:counts:{source}:{minute}   hash  field "{topic}:{partition}" -> "neg,neu,pos,score_sum"
  {prefix}:offset:{topic}:{partition} string last offset applied for that partition
  {prefix}:sources                    set   every source seen
One batch is one MULTI/EXEC guarded by WATCH on the offset keys it advances: if a
zombie worker wrote the same partition meanwhile, EXEC aborts and the batch is re-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from stream_app.pipeline.counts import CountedRecord, Counts, deltas_by_partition, minute_of


class AggregateStore(Protocol):
    """The sink seam: apply a batch durably before its offsets may be committed."""

    async def apply(self, records: Sequence[CountedRecord]) -> int: ...

    async def minute_counts(self, source: str, minute: int) -> Counts: ...

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
    def __init__(self, client: aioredis.Redis, prefix: str = "sm", retention_s: int = 7 * 86400) -> None:
        self.client = client
        self.prefix = prefix
        self.retention_s = retention_s

    def counts_key(self, source: str, minute: int) -> str:
        return f"{self.prefix}:counts:{source}:{minute}"

    def offset_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:offset:{topic}:{partition}"

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        """Returns how many records were new. Safe to call again with the same records."""
        if not records:
            return 0
        partitions = sorted({(r.topic, r.partition) for r in records})
        offset_keys = [self.offset_key(t, p) for t, p in partitions]
        while True:
            async with self.client.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(*offset_keys)
                    applied_raw = await self.client.mget(offset_keys)
                    applied = {tp: int(raw) for tp, raw in zip(partitions, applied_raw, strict=True) if raw is not None}
                    deltas = deltas_by_partition(records, applied)
                    if not deltas:
                        await tx.unwatch()  # type: ignore[no-untyped-call]
                        return 0
                    current = await self._read_partials(deltas)
                    tx.multi()  # type: ignore[no-untyped-call]
                    fresh = 0
                    for (topic, partition), delta in deltas.items():
                        field = f"{topic}:{partition}"
                        for (source, minute), added in delta.buckets.items():
                            key = self.counts_key(source, minute)
                            total = current[(key, field)].merge(added)
                            tx.hset(key, field, total.encode())
                            tx.expire(key, self.retention_s)
                            tx.sadd(f"{self.prefix}:sources", source)
                            fresh += added.volume
                        tx.set(self.offset_key(topic, partition), delta.max_offset)
                    await tx.execute()
                    return fresh
                except WatchError:
                    continue

    async def _read_partials(self, deltas: dict[tuple[str, int], Any]) -> dict[tuple[str, str], Counts]:
        wanted = [
            (self.counts_key(source, minute), f"{topic}:{partition}")
            for (topic, partition), delta in deltas.items()
            for (source, minute) in delta.buckets
        ]
        async with self.client.pipeline(transaction=False) as reads:
            for key, field in wanted:
                reads.hget(key, field)
            values = await reads.execute()
        return {pair: Counts.decode(v) for pair, v in zip(wanted, values, strict=True)}

    async def minute_counts(self, source: str, minute: int) -> Counts:
        partials = await self.client.hgetall(self.counts_key(source, minute_of(minute)))
        total = Counts()
        for raw in partials.values():
            total = total.merge(Counts.decode(raw))
        return total

    async def sources(self) -> list[str]:
        members = await self.client.smembers(f"{self.prefix}:sources")
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def close(self) -> None:
        await self.client.aclose()
