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

Names (entities, platforms) come from record content, so each component is escaped before it
joins a key: `%`, the separators `|` and `:`, and control characters become `%XX` (UTF-8 bytes,
upper-case hex). Everything else, spaces and non-ASCII letters included, stays as it is, so a
plain name's key reads the same as before (`ent:Veltro Motors|src:reddit`). The escaping is
injective, and so is every key built from escaped components: a brand `Veltro Motors|src:reddit`
becomes `ent:Veltro Motors%7Csrc%3Areddit`, which no other (entity, source) pair can produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SOURCE = "src:"
ENTITY = "ent:"
ENTITY_SOURCE = "|src:"
_RESERVED = frozenset("%|:")


def _needs_escape(ch: str) -> bool:
    return ch in _RESERVED or ord(ch) < 0x20 or ord(ch) == 0x7F


def escape(component: str) -> str:
    """Percent-encode the reserved characters of one key component."""
    if not any(_needs_escape(ch) for ch in component):
        return component
    return "".join(
        "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")) if _needs_escape(ch) else ch
        for ch in component
    )


def unescape(component: str) -> str:
    """The inverse of `escape`."""
    if "%" not in component:
        return component
    out = bytearray()
    i = 0
    while i < len(component):
        if component[i] == "%" and _is_hex(component[i + 1 : i + 3]):
            out.append(int(component[i + 1 : i + 3], 16))
            i += 3
        else:
            out += component[i].encode("utf-8", "surrogatepass")
            i += 1
    return out.decode("utf-8", "surrogatepass")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def source_key(source: str) -> str:
    return f"{SOURCE}{escape(source)}"


def entity_key(entity: str, source: str | None = None) -> str:
    """`ent:{entity}`, or `ent:{entity}|src:{source}` for one entity's share of a source."""
    base = f"{ENTITY}{escape(entity)}"
    return f"{base}{ENTITY_SOURCE}{escape(source)}" if source else base


def entity_sources_prefix(entity: str) -> str:
    """The prefix shared by every `ent:{entity}|src:{source}` key."""
    return f"{ENTITY}{escape(entity)}{ENTITY_SOURCE}"


def record_keys(source: str, entities: Sequence[str]) -> tuple[str, ...]:
    """The aggregates one record feeds: its source, each entity, and each (entity, source)."""
    return (source_key(source), *(entity_key(e) for e in entities), *(entity_key(e, source) for e in entities))


def entity_of(key: str) -> str | None:
    """`ent:{entity}` -> entity; None for source keys and per-source entity keys."""
    if not key.startswith(ENTITY) or ENTITY_SOURCE in key:
        return None
    return unescape(key[len(ENTITY) :])


def source_of(key: str) -> str | None:
    """The source of `src:{source}` or `ent:{entity}|src:{source}`; None for a plain entity key."""
    if key.startswith(SOURCE):
        return unescape(key[len(SOURCE) :])
    if ENTITY_SOURCE in key:
        return unescape(key.split(ENTITY_SOURCE, 1)[1])
    return None


def parse_aggregate_key(key: str) -> tuple[str | None, str | None]:
    """(entity, source) of an aggregate key; either may be None. Unknown shapes give (None, None)."""
    if key.startswith(SOURCE):
        return None, unescape(key[len(SOURCE) :])
    if key.startswith(ENTITY):
        entity, sep, source = key[len(ENTITY) :].partition(ENTITY_SOURCE)
        return unescape(entity), (unescape(source) if sep else None)
    return None, None


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
        """Kafka topic names allow only [A-Za-z0-9._-], so they need no escaping."""
        return f"{self.prefix}:pstate:{topic}:{partition}"

    def partition_states_pattern(self) -> str:
        return f"{self.prefix}:pstate:*"

    def index(self) -> str:
        return f"{self.prefix}:keys"

    def alerts(self, name: str) -> str:
        return f"{self.prefix}:alerts:{name}"

    def posts(self, entity: str) -> str:
        return f"{self.prefix}:posts:{escape(entity)}"
