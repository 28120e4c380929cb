"""Redis-backed detector state, leadership, outbox and post samples for the alerting service.

  {prefix}:alerts:leader          string  lease of the one detector per app (redis-py Lock)
  {prefix}:alerts:state           hash    entity -> EntityState JSON
  {prefix}:alerts:outbox          hash    "{alert_id}:{status}" -> Alert JSON, until published
  {prefix}:alerts:active          hash    entity -> the firing Alert JSON
  {prefix}:alerts:recent          list    newest Alert JSONs, capped
  {prefix}:posts:{entity}         zset    post sample JSON, scored by event time, capped

States and outbox entries are written in one MULTI/EXEC that only commits while this
process still holds the lease, so a detector that lost leadership cannot write over its
successor, and an alert decided is never lost: it sits in the outbox until the alerts topic
has it. Publication is at least once; the stable `alert_id` makes a repeat recognisable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, WatchError

from schemas.models import Alert
from stream_app.pipeline.keys import posts_key
from stream_app.pipeline.samples import PostSample

RECENT_ALERTS = 100
POSTS_PER_ENTITY = 300


class RedisPostSamples:
    """The newest posts per entity, for the alert's sample posts and terms. Idempotent: the
    member is the post itself, so a redelivered batch rewrites the same members."""

    def __init__(self, client: aioredis.Redis, prefix: str, retention_s: int, per_entity: int = POSTS_PER_ENTITY):
        self.client, self.prefix, self.retention_s, self.per_entity = client, prefix, retention_s, per_entity

    def key(self, entity: str) -> str:
        return posts_key(self.prefix, entity)

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
    def __init__(self, client: aioredis.Redis, prefix: str, leader_ttl_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.lock = Lock(client, f"{prefix}:alerts:leader", timeout=leader_ttl_s, blocking=False, thread_local=False)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:alerts:{name}"

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

    async def save(self, states: Mapping[str, dict[str, Any]], alerts: Sequence[Alert]) -> bool:
        """Atomically store states and queue alerts, only while still the leader."""
        token = self.lock.local.token
        async with self.client.pipeline(transaction=True) as tx:
            try:
                await tx.watch(self.lock.name)
                if token is None or await tx.get(self.lock.name) != token:
                    await tx.unwatch()  # type: ignore[no-untyped-call]
                    return False
                tx.multi()  # type: ignore[no-untyped-call]
                if states:
                    tx.hset(self._key("state"), mapping={e: orjson.dumps(s) for e, s in states.items()})
                for alert in alerts:
                    payload = alert.model_dump_json()
                    tx.hset(self._key("outbox"), f"{alert.alert_id}:{alert.status}", payload)
                    if alert.status == "firing":
                        tx.hset(self._key("active"), alert.entity, payload)
                    else:
                        tx.hdel(self._key("active"), alert.entity)
                    tx.lpush(self._key("recent"), payload)
                tx.ltrim(self._key("recent"), 0, RECENT_ALERTS - 1)
                await tx.execute()
                return True
            except WatchError:
                return False

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
