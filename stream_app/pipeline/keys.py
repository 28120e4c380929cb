"""Every Redis key and aggregate-key format, in one place.

Names (entities, platforms) come from record content, so each component is escaped before it
joins a key: `%`, the separators `|` and `:`, and control characters become `%XX` (UTF-8 bytes,
upper-case hex). Everything else, spaces and non-ASCII letters included, stays as it is, so a
plain name's key reads the same as before (`ent:Veltro Motors|src:reddit`). The escaping is
injective, and so is every key built from escaped components: a brand `Veltro Motors|src:reddit`
becomes `ent:Veltro Motors%7Csrc%3Areddit`, which no other (entity, source) pair can produce.
"""

from __future__ import annotations

from collections.abc import Sequence

_RESERVED = frozenset("%|:")
ENTITY = "ent:"
SOURCE = "src:"
SOURCE_SEP = "|src:"


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


def entity_key(entity: str) -> str:
    return f"{ENTITY}{escape(entity)}"


def aggregate_key(entity: str, source: str | None = None) -> str:
    """`ent:{entity}`, or `ent:{entity}|src:{source}` for one entity's share of a source."""
    return f"{entity_key(entity)}{SOURCE_SEP}{escape(source)}" if source else entity_key(entity)


def aggregate_keys(source: str, entities: Sequence[str]) -> tuple[str, ...]:
    """The aggregates one record feeds: its source, each entity, and each (entity, source)."""
    return (source_key(source), *(aggregate_key(e) for e in entities), *(aggregate_key(e, source) for e in entities))


def parse_aggregate_key(key: str) -> tuple[str | None, str | None]:
    """(entity, source) of an aggregate key; either may be None. Unknown shapes give (None, None)."""
    if key.startswith(SOURCE):
        return None, unescape(key[len(SOURCE) :])
    if key.startswith(ENTITY):
        entity, sep, source = key[len(ENTITY) :].partition(SOURCE_SEP)
        return unescape(entity), (unescape(source) if sep else None)
    return None, None


def entity_sources_prefix(entity: str) -> str:
    """The key-index prefix of every `ent:{entity}|src:*` key."""
    return f"{entity_key(entity)}{SOURCE_SEP}"


def bucket_key(prefix: str, key: str, minute: int) -> str:
    return f"{prefix}:agg:{key}:{minute}"


def state_key(prefix: str, topic: str, partition: int) -> str:
    """Kafka topic names allow only [A-Za-z0-9._-], so they need no escaping."""
    return f"{prefix}:pstate:{topic}:{partition}"


def posts_key(prefix: str, entity: str) -> str:
    return f"{prefix}:posts:{escape(entity)}"
