"""Redis-backed detector state, leadership, outbox and post samples for the alerting service.

  {prefix}:{alerts}:leader        string  lease of the one detector per app (redis-py Lock)
  {prefix}:{alerts}:state         hash    entity -> EntityState JSON
  {prefix}:{alerts}:outbox        hash    "{alert_id}:{status}" -> Alert JSON, until published
  {prefix}:{alerts}:active        hash    entity -> the firing Alert JSON
  {prefix}:{alerts}:recent        list    newest Alert JSONs, capped
  {prefix}:{sNN}:posts:{entity}   zset    post sample JSON, scored by event time, capped

Every alert key shares the `{alerts}` hash tag, so on Redis Cluster they sit in one slot.
States and outbox entries are written by one script that first checks this process still
holds the lease, so a detector that lost leadership cannot write over its successor, and an
alert decided is never lost: it sits in the outbox until the alerts topic has it. Publication
is at least once; the stable `alert_id` makes a repeat recognisable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from exporters.redis.connection import Client, Script
from schemas.models import Alert
from stream_app.pipeline.keys import RedisKeys
from stream_app.pipeline.samples import PostSample

RECENT_ALERTS = 100
POSTS_PER_ENTITY = 300

# KEYS: leader, state, outbox, active, recent. ARGV: token, recent cap, n states, (entity, json)*,
# n alerts, (outbox field, entity, status, json)*. Writes nothing unless the lease is still ours.
SAVE = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
for s = 1, n do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
n = tonumber(ARGV[i]); i = i + 1
for a = 1, n do
  local field, entity, status, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  redis.call('HSET', KEYS[3], field, payload)
  if status == 'firing' then redis.call('HSET', KEYS[4], entity, payload) else redis.call('HDEL', KEYS[4], entity) end
  redis.call('LPUSH', KEYS[5], payload)
end
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[2]) - 1)
return 1
"""


class RedisPostSamples:
    """The newest posts per entity, for the alert's sample posts and terms. Idempotent: the
    member is the post itself, so a redelivered batch rewrites the same members."""

    def __init__(self, client: Client, keys: RedisKeys, retention_s: int, per_entity: int = POSTS_PER_ENTITY) -> None:
        self.client, self.keys, self.retention_s, self.per_entity = client, keys, retention_s, per_entity

    def key(self, entity: str) -> str:
        return self.keys.posts(entity)

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[tuple[str, PostSample]]) -> None:
        await self.add(batch)

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None  # the store owns the shared client and closes it

    async def add(self, samples: Iterable[tuple[str, PostSample]]) -> None:
        by_entity: dict[str, dict[bytes, float]] = {}
        for entity, sample in samples:
            by_entity.setdefault(entity, {})[sample.encode()] = sample.ts
        if not by_entity:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for entity, members in by_entity.items():
                pipe.zadd(self.key(entity), members)
                pipe.zremrangebyrank(self.key(entity), 0, -self.per_entity - 1)
                pipe.expire(self.key(entity), self.retention_s)
            await pipe.execute()

    async def recent(self, entity: str, until: float) -> list[PostSample]:
        raw: list[bytes] = await self.client.zrangebyscore(self.key(entity), "-inf", f"({until}")  # type: ignore[assignment]
        return [PostSample.decode(r) for r in raw]


class RedisAlertState:
    def __init__(self, client: Client, keys: RedisKeys, leader_ttl_s: float) -> None:
        self.client = client
        self.names = keys
        self.lock = Lock(
            client,  # redis-py's Lock runs on the cluster client too
            self.names.alerts("leader"),
            timeout=leader_ttl_s,
            blocking=False,
            thread_local=False,
        )
        self._save = Script(SAVE)

    def _key(self, name: str) -> str:
        return self.names.alerts(name)

    async def lead(self) -> bool:
        """Take or keep the leadership lease; False when another worker holds it."""
        try:
            if self.lock.local.token is not None and await self.lock.owned():
                await self.lock.reacquire()
                return True
            return bool(await self.lock.acquire())
        except LockError:
            return False

    async def load(self, entities: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not entities:
            return {}
        rows = await self.client.hmget(self._key("state"), list(entities))
        return {e: orjson.loads(r) for e, r in zip(entities, rows, strict=True) if r is not None}

    async def save(self, states: Mapping[str, bytes], alerts: Sequence[Alert]) -> bool:
        """Atomically store states (their JSON, `EntityState.dump()`) and queue alerts, only
        while still the leader."""
        token = self.lock.local.token
        if token is None:
            return False
        args: list[Any] = [token, RECENT_ALERTS, len(states)]
        for entity, state in states.items():
            args += [entity, state]
        args.append(len(alerts))
        for alert in alerts:
            args += [f"{alert.alert_id}:{alert.status}", alert.entity, alert.status, alert.model_dump_json()]
        keys = [self.lock.name, *(self._key(name) for name in ("state", "outbox", "active", "recent"))]
        [saved] = await self._save.run_each(self.client, [(keys, args)])
        return bool(saved)

    async def outbox(self) -> list[Alert]:
        raw: dict[Any, Any] = await self.client.hgetall(self._key("outbox"))
        alerts = [Alert.model_validate_json(v) for v in raw.values()]
        return sorted(alerts, key=lambda a: (a.evaluated_at, a.status == "firing"))

    async def published(self, alert: Alert) -> None:
        await self.client.hdel(self._key("outbox"), f"{alert.alert_id}:{alert.status}")

    async def active(self) -> list[Alert]:
        raw: dict[Any, Any] = await self.client.hgetall(self._key("active"))
        return sorted((Alert.model_validate_json(v) for v in raw.values()), key=lambda a: a.entity)

    async def recent(self, limit: int = 20) -> list[Alert]:
        raw: list[Any] = await self.client.lrange(self._key("recent"), 0, limit - 1)
        return [Alert.model_validate_json(v) for v in raw]
