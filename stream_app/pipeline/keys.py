"""Every Redis key the service writes or reads: its format and its parsing, in one place.

Aggregate keys name what a count is about (docs/redis.md):
  src:{source}                  one source (platform), all entities
  ent:{entity}                  one entity, all sources
  ent:{entity}|src:{source}     one entity on one source
Redis keys put the deployment's prefix in front:
  {prefix}:agg:{aggregate key}:{minute}   hash  field "{topic}:{partition}" -> Counts.encode()
  {prefix}:pstate:{topic}:{partition}     hash  what that partition applied
  {prefix}:keys                           zset  aggregate key -> newest minute written
  {prefix}:alerts:{name}                  the alert detector's lease, state, outbox, active and recent
  {prefix}:posts:{entity}                 zset  post samples for alert explanations
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SOURCE = "src:"
ENTITY = "ent:"
ENTITY_SOURCE = "|src:"


def source_key(source: str) -> str:
    return f"{SOURCE}{source}"


def entity_key(entity: str, source: str | None = None) -> str:
    return f"{ENTITY}{entity}{ENTITY_SOURCE}{source}" if source else f"{ENTITY}{entity}"


def entity_sources_prefix(entity: str) -> str:
    """The prefix shared by every `ent:{entity}|src:{source}` key."""
    return f"{ENTITY}{entity}{ENTITY_SOURCE}"


def record_keys(source: str, entities: Sequence[str]) -> tuple[str, ...]:
    """The aggregates one record feeds: its source, each entity, and each (entity, source)."""
    return (source_key(source), *(entity_key(e) for e in entities), *(entity_key(e, source) for e in entities))


def entity_of(key: str) -> str | None:
    """`ent:{entity}` -> entity; None for source keys and per-source entity keys."""
    if not key.startswith(ENTITY) or ENTITY_SOURCE in key:
        return None
    return key[len(ENTITY) :]


def source_of(key: str) -> str | None:
    """The source of `src:{source}` or `ent:{entity}|src:{source}`; None for a plain entity key."""
    if key.startswith(SOURCE):
        return key[len(SOURCE) :]
    if ENTITY_SOURCE in key:
        return key.split(ENTITY_SOURCE, 1)[1]
    return None


def partition_field(topic: str, partition: int) -> str:
    """The hash field of one partition's partial count inside a minute bucket."""
    return f"{topic}:{partition}"


@dataclass(frozen=True)
class RedisKeys:
    """Full Redis key names under one deployment's prefix."""

    prefix: str = "sm"

    def bucket(self, key: str, minute: int) -> str:
        return f"{self.prefix}:agg:{key}:{minute}"

    def bucket_pattern(self, key_pattern: str = "*") -> str:
        return f"{self.prefix}:agg:{key_pattern}"

    def partition_state(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:pstate:{topic}:{partition}"

    def partition_states_pattern(self) -> str:
        return f"{self.prefix}:pstate:*"

    def index(self) -> str:
        return f"{self.prefix}:keys"

    def alerts(self, name: str) -> str:
        return f"{self.prefix}:alerts:{name}"

    def posts(self, entity: str) -> str:
        return f"{self.prefix}:posts:{entity}"
