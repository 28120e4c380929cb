"""Every Redis key the service writes or reads: its format and its parsing, in one place.

Aggregate keys name what a count is about (docs/redis.md):
  src:{source}                  one source (platform), all entities
  ent:{entity}                  one entity, all sources
  ent:{entity}|src:{source}     one entity on one source

Each aggregate lives in one of `shards` virtual store shards (`shard_of`): an entity's own and
per-source aggregates share one, so a batch's changes to them, the shard's offset fence and its
leaderboards sit in one Redis Cluster hash slot, the `{sNN}` tag, and change in one atomic step.
Redis keys put the deployment's prefix in front:
  {prefix}:{sNN}:fence                      hash  "{topic}:{partition}" -> PartitionState.encode()
  {prefix}:{sNN}:m:{aggregate}:{hour}       hash  minute of the hour "0".."59" -> Counts.encode()
  {prefix}:{sNN}:h:{aggregate}:{day}        hash  hour of the day "0".."23" -> Counts.encode()
  {prefix}:{sNN}:wstate                     hash  window minutes -> the newest minute no longer in it
  {prefix}:{sNN}:w:{minutes}                hash  `ent:{entity}` aggregate key -> its window totals
  {prefix}:{sNN}:wv:{minutes} / ws:{minutes} zset  `ent:{entity}` keys by window volume / negative share
  {prefix}:{sNN}:es:{entity}                set   the sources an entity was seen on
  {prefix}:{sNN}:posts:{entity}             zset  post samples for alert explanations
  {prefix}:{idx}:names                      zset  every entity, all scores 0 (pages in name order)
  {prefix}:{idx}:fold                       hash  folded name -> entity (case-insensitive lookup)
  {prefix}:{idx}:folded                     zset  "{folded name}\\0{name}", all scores 0 (suggestions)
  {prefix}:{idx}:sources                    set   every source
  {prefix}:{idx}:meta                       hash  layout version and shard count
  {prefix}:{alerts}:{name}                  the alert detector's lease, state, outbox, active, recent

Names (entities, platforms) come from record content, so each component is escaped before it
joins a key: `%`, the separators `|` and `:`, braces (a Redis Cluster hash tag), and control
characters become `%XX` (UTF-8 bytes, upper-case hex). Everything else, spaces and non-ASCII
letters included, stays as it is. The escaping is injective, and so is every key built from
escaped components: a brand `Veltro Motors|src:reddit` becomes `ent:Veltro Motors%7Csrc%3Areddit`,
which no other (entity, source) pair can produce.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

SOURCE = "src:"
ENTITY = "ent:"
ENTITY_SOURCE = "|src:"
_RESERVED = frozenset("%|:{}")


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
    """The fence hash field of one Kafka partition (topic names allow only [A-Za-z0-9._-])."""
    return f"{topic}:{partition}"


def parse_partition_field(field: str) -> tuple[str, int]:
    topic, _, partition = field.rpartition(":")
    return topic, int(partition)


def shard_of(aggregate: str, shards: int) -> int:
    """The virtual shard of an aggregate key: by entity for `ent:` keys (so `ent:X` and every
    `ent:X|src:S` share one: the part before `|src:`, which escaping keeps unambiguous), by
    source for `src:` keys. CRC-32 of the (escaped) key text: stable across processes."""
    basis = aggregate.partition(ENTITY_SOURCE)[0] if aggregate.startswith(ENTITY) else aggregate
    return zlib.crc32(basis.encode("utf-8", "surrogatepass")) % shards


def minute_field(minute: int) -> str:
    """The field of a minute inside its hour's hash."""
    return str((minute % 3600) // 60)


def hour_field(hour: int) -> str:
    """The field of an hour inside its day's hash."""
    return str((hour % 86400) // 3600)


@dataclass(frozen=True)
class RedisKeys:
    """Full Redis key names under one deployment's prefix and shard count."""

    prefix: str = "sm"
    shards: int = 16

    def tag(self, shard: int) -> str:
        return f"{self.prefix}:{{s{shard:02d}}}"

    def shard(self, aggregate: str) -> int:
        return shard_of(aggregate, self.shards)

    def fence(self, shard: int) -> str:
        return f"{self.tag(shard)}:fence"

    def minutes(self, aggregate: str, hour: int) -> str:
        return self.shard_minutes(self.shard(aggregate), aggregate, hour)

    def shard_minutes(self, shard: int, aggregate: str, hour: int) -> str:
        """`minutes()` when the caller already knows the aggregate's shard (reads grouped by shard)."""
        return f"{self.minutes_prefix(shard)}{aggregate}:{hour}"

    def minutes_prefix(self, shard: int) -> str:
        """What `minutes()` puts before `{aggregate}:{hour}`: the leaderboard roll builds the
        minute keys of the entities it subtracts from it (exporters/redis/lua.py)."""
        return f"{self.tag(shard)}:m:"

    def hours(self, aggregate: str, day: int) -> str:
        return f"{self.hours_prefix(self.shard(aggregate))}{aggregate}:{day}"

    def hours_prefix(self, shard: int) -> str:
        return f"{self.tag(shard)}:h:"

    def window_state(self, shard: int) -> str:
        return f"{self.tag(shard)}:wstate"

    def window(self, shard: int, minutes: int) -> tuple[str, str, str]:
        """(totals hash, by-volume zset, by-share zset) of one leaderboard window."""
        base = self.tag(shard)
        return f"{base}:w:{minutes}", f"{base}:wv:{minutes}", f"{base}:ws:{minutes}"

    def entity_sources(self, entity: str) -> str:
        return f"{self.tag(self.shard(entity_key(entity)))}:es:{escape(entity)}"

    def posts(self, entity: str) -> str:
        return f"{self.tag(self.shard(entity_key(entity)))}:posts:{escape(entity)}"

    def names(self) -> str:
        return f"{self.prefix}:{{idx}}:names"

    def folds(self) -> str:
        return f"{self.prefix}:{{idx}}:fold"

    def folded(self) -> str:
        """zset of `{folded name}\\0{name}`, all scores 0: names near a query, for suggestions."""
        return f"{self.prefix}:{{idx}}:folded"

    def sources(self) -> str:
        return f"{self.prefix}:{{idx}}:sources"

    def meta(self) -> str:
        return f"{self.prefix}:{{idx}}:meta"

    def alerts(self, name: str) -> str:
        return f"{self.prefix}:{{alerts}}:{name}"
