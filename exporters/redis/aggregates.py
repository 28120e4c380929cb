"""The Redis aggregate store (implements `stream_app.pipeline.ports.AggregateStore`): the write path.

A batch becomes one script call per store shard (exporters/redis/lua.py), all in one pipeline:
the shard's minute buckets, hour roll-ups and leaderboards change together with its per-partition
offset fences, compare-and-set on the offsets this process last saw. Every shard's fences move on
every batch, even when the batch brought it nothing, so the smallest fence of a partition over all
shards is a point up to which every shard holds everything: the store's own resume point
(`resume_offsets`), which survives Redis losing acknowledged writes, because a shard's fence and
data roll back together (docs/design.md). Reads are in exporters/redis/reads.py.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporters.redis.connection import Client, Script
from exporters.redis.lua import APPLY
from exporters.redis.reads import StoreReads
from stream_app.errors import StoreMismatch, StoreRegressed
from stream_app.pipeline.counts import (
    DAY,
    CountedRecord,
    PartitionState,
    deltas_by_partition,
    hour_of,
)
from stream_app.pipeline.keys import (
    ENTITY,
    ENTITY_SOURCE,
    RedisKeys,
    parse_aggregate_key,
    parse_partition_field,
    partition_field,
)
from stream_app.pipeline.lookup import fold
from stream_app.pipeline.windows import LEADERBOARD_WINDOWS_MIN, TOP_MIN_VOLUME

log = logging.getLogger(__name__)
LAYOUT = "2"
TP = tuple[str, int]


@dataclass
class ShardCall:
    """One shard's script call: the fences it moves and the changes it adds."""

    shard: int
    parts: list[tuple[str, int, PartitionState]] = field(default_factory=list)  # field, expected, new
    changes: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # aggregate -> minute -> added


@dataclass
class Plan:
    calls: list[ShardCall]
    fresh: int
    late: int


class RedisAggregateStore(StoreReads):
    def __init__(
        self,
        client: Client,
        prefix: str = "sm",
        shards: int = 16,
        retention_s: int = 7 * DAY,
        minute_retention_s: int = 2 * DAY,
        allowed_lateness_s: float = float("inf"),
        windows_min: Sequence[int] = LEADERBOARD_WINDOWS_MIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, RedisKeys(prefix, shards), windows_min)
        self.retention_s = retention_s
        self.minute_retention_s = minute_retention_s
        self.allowed_lateness_s = allowed_lateness_s
        self.clock = clock
        self.late_applied = 0
        self._fences: dict[int, dict[TP, PartitionState]] = defaultdict(dict)
        self._apply = Script(APPLY)
        self._checked = False
        self._indexed_hour = 0  # the index is written once an hour per key, by each process
        self._indexed_keys: set[str] = set()

    # -- the write path (the `Sink` shape, and `apply`, which also says how many were new) -----

    async def start(self) -> None:
        """Check the store's layout and load the script before the first batch."""
        await self._check_layout()
        await self._apply.load(self.client)

    async def write(self, batch: Sequence[CountedRecord]) -> None:
        await self.apply(batch)

    async def flush(self) -> None:
        return None  # every write is applied before it returns

    async def stop(self) -> None:
        await self.close()

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        """Count a batch exactly once; returns how many records were new. Safe to repeat."""
        if not records:
            return 0
        await self._check_layout()
        partitions = sorted({(r.topic, r.partition) for r in records})
        await self._load_fences(partitions, fresh=False)
        while True:
            plan = self._plan(records, partitions)
            if not plan.calls:
                return 0
            await self._index(plan.calls)
            if await self._run(plan.calls):
                self.late_applied += plan.late
                return plan.fresh

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[TP, int]:
        """What every shard holds, per partition (from this process's view of the fences)."""
        await self._load_fences(list(partitions), fresh=False)
        return self._lowest(partitions)

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[TP, int]:
        """The store's own truth, read afresh: the last offset every shard has applied. A consumer
        resumes after it. Partitions the store never saw are left out."""
        await self._load_fences(list(partitions), fresh=True)
        return self._lowest(partitions)

    async def roll(self, now: float | None = None) -> None:
        """Move every shard's leaderboards up to `now` (the write path does it too; this keeps
        them current while no records arrive)."""
        await self._check_layout()
        await self._run([ShardCall(shard) for shard in range(self.keys.shards)], now)

    def _lowest(self, partitions: Sequence[TP]) -> dict[TP, int]:
        out: dict[TP, int] = {}
        for tp in partitions:
            offsets = [self._fences[s].get(tp, PartitionState()).offset for s in range(self.keys.shards)]
            if any(o >= 0 for o in offsets):
                out[tp] = min(offsets)
        return out

    async def _load_fences(self, partitions: list[TP], fresh: bool) -> None:
        wanted = [tp for tp in partitions if fresh or any(tp not in self._fences[s] for s in range(self.keys.shards))]
        if not wanted:
            return
        fields = [partition_field(t, p) for t, p in wanted]
        async with self.client.pipeline(transaction=False) as reads:
            for shard in range(self.keys.shards):
                reads.hmget(self.keys.fence(shard), fields)
            rows = await reads.execute()
        for shard, row in enumerate(rows):
            for tp, raw in zip(wanted, row, strict=True):
                self._observe(shard, tp, PartitionState.decode(raw))

    def _observe(self, shard: int, tp: TP, state: PartitionState) -> None:
        """Record a fence read from Redis; one that went backwards means Redis lost writes."""
        known = self._fences[shard].get(tp)
        if known is not None and state.offset < known.offset:
            raise StoreRegressed(
                f"the store's fence for {tp[0]}:{tp[1]} on shard {shard} went back from offset "
                f"{known.offset} to {state.offset}: Redis lost acknowledged writes",
                hint="the worker exits and resumes every partition from the store's fences",
            )
        self._fences[shard][tp] = state

    def _plan(self, records: Sequence[CountedRecord], partitions: list[TP]) -> Plan:
        """Per shard, the changes the batch brings it, folded from that shard's own fences (they
        differ only after a partial failure, and then each shard replays from its own point)."""
        groups: dict[tuple[PartitionState, ...], list[int]] = defaultdict(list)
        for shard in range(self.keys.shards):
            groups[tuple(self._fences[shard].get(tp, PartitionState()) for tp in partitions)].append(shard)
        now = self.clock()
        calls: list[ShardCall] = []
        fresh = late = 0
        shard_cache: dict[str, int] = {}
        for states, shards in groups.items():
            applied = dict(zip(partitions, states, strict=True))
            deltas = deltas_by_partition(records, applied, self.allowed_lateness_s)
            if not deltas:
                continue
            fresh = max(fresh, sum(d.records for d in deltas.values()))
            late = max(late, sum(d.state.late - applied[tp].late for tp, d in deltas.items()))
            by_shard: dict[int, ShardCall] = {
                s: ShardCall(
                    s,
                    [
                        (partition_field(*tp), applied[tp].offset, _stamped(d.state, now))
                        for tp, d in sorted(deltas.items())
                    ],
                )
                for s in shards
            }
            for delta in deltas.values():
                for minute, rows in delta.rows.items():
                    for key, added in rows.items():
                        if key not in shard_cache:
                            shard_cache[key] = self.keys.shard(key)
                        call = by_shard.get(shard_cache[key])
                        if call is None:
                            continue
                        minutes = call.changes.setdefault(key, {})
                        held = minutes.get(minute)
                        if held is None:
                            minutes[minute] = added
                        else:  # two partitions in one batch fed this bucket
                            minutes[minute] = [a + b for a, b in zip(held, added, strict=True)]
            calls.extend(by_shard.values())
        return Plan(calls, fresh, late)

    async def _index(self, calls: list[ShardCall]) -> None:
        """Entities and sources enter the index before their counts (so the index holds every
        name with data), once an hour per name from this process (so an index shard that lost
        writes heals within the hour)."""
        hour = hour_of(self.clock())
        if hour != self._indexed_hour:
            self._indexed_hour, self._indexed_keys = hour, set()
        fresh = {key for call in calls for key in call.changes} - self._indexed_keys
        if not fresh:
            return
        names: set[str] = set()
        sources: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        for key in fresh:
            entity, source = parse_aggregate_key(key)
            if entity is not None and source is not None:
                pairs.add((entity, source))
            elif entity is not None:
                names.add(entity)
            elif source is not None:
                sources.add(source)
        todo = [("n", n) for n in names] + [("s", s) for s in sources] + [("p", f"{e}\x00{s}") for e, s in pairs]
        async with self.client.pipeline(transaction=False) as pipe:
            for kind, value in todo:
                if kind == "n":
                    pipe.zadd(self.keys.names(), {value: 0})
                    pipe.zadd(self.keys.folded(), {f"{fold(value)}\x00{value}": 0})
                    pipe.hsetnx(self.keys.folds(), fold(value), value)
                elif kind == "s":
                    pipe.sadd(self.keys.sources(), value)
                else:
                    entity, source = value.split("\x00", 1)
                    pipe.sadd(self.keys.entity_sources(entity), source)
                    pipe.expire(self.keys.entity_sources(entity), self.retention_s)
            await pipe.execute()
        self._indexed_keys |= fresh

    async def _run(self, calls: list[ShardCall], now: float | None = None) -> bool:
        """Send every shard's call in one pipeline. True when all applied; False when some
        fences had moved (they are re-read; the caller plans again)."""
        now = self.clock() if now is None else now
        prepared = [self._arguments(call, now) for call in calls]
        replies = await self._apply.run_each(self.client, prepared, raise_on_error=False)
        settled = True
        error: BaseException | None = None
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, BaseException):
                error = error or reply
                continue
            status = _text(reply[0])
            if status in ("OK", "DONE"):
                for name, _, state in call.parts:
                    self._fences[call.shard][parse_partition_field(name)] = state
                continue
            settled = False
            values = [_text(v) for v in reply[1:]]
            for name, raw in zip(values[0::2], values[1::2], strict=True):
                self._observe(call.shard, parse_partition_field(name), PartitionState.decode(raw or None))
        if error is not None:
            raise error
        return settled

    def _arguments(self, call: ShardCall, now: float) -> tuple[list[str], list[Any]]:
        shard = call.shard
        keys = [self.keys.fence(shard), self.keys.window_state(shard)]
        for window in self.windows_min:
            keys.extend(self.keys.window(shard, window))
        args: list[Any] = [
            int(now // 60) * 60,
            TOP_MIN_VOLUME,
            self.keys.minutes_prefix(shard),
            self.keys.hours_prefix(shard),
            int(now),
            self.minute_retention_s,
            self.retention_s,
            len(call.parts),
        ]
        for name, expected, state in call.parts:
            args += [name, expected, state.encode()]
        args.append(len(self.windows_min))
        args += [window * 60 for window in self.windows_min]
        args.append(len(call.changes))
        for key, minutes in call.changes.items():  # one packed argument per aggregate: cheap to send and parse
            ranked = key.startswith(ENTITY) and ENTITY_SOURCE not in key  # `ent:{entity}`, not per source
            packed = ";".join(f"{minute},{n},{u},{p},{m}" for minute, (n, u, p, m) in minutes.items())
            args += [key, "1" if ranked else "", packed]
        return keys, args

    async def _check_layout(self) -> None:
        """A store written with another shard count cannot be read or written by this process."""
        if self._checked:
            return
        meta = self.keys.meta()
        await self.client.hsetnx(meta, "shards", str(self.keys.shards))
        await self.client.hsetnx(meta, "layout", LAYOUT)
        shards, layout = (_text(v) for v in await self.client.hmget(meta, ["shards", "layout"]))
        if shards != str(self.keys.shards) or layout != LAYOUT:
            raise StoreMismatch(
                f"the store under prefix {self.keys.prefix!r} has {shards} shards (layout {layout}); "
                f"this process expects {self.keys.shards} (layout {LAYOUT})",
                setting="SM_REDIS_SHARDS, SM_REDIS_PREFIX",
                hint="use the store's shard count, or another prefix and `sentiment-monitor aggregates rebuild`",
            )
        self._checked = True


def _stamped(state: PartitionState, now: float) -> PartitionState:
    return PartitionState(state.offset, state.watermark, state.late, now)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
