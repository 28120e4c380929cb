"""Everything a store holds over a span of minutes, for exactness checks (tests, chaos, benches).

Walks the store's own index (every entity, source and entity-source pair), so a bucket the
index does not know would be missed: the index is written before the counts for that reason.
"""

from __future__ import annotations

from stream_app.pipeline.counts import Counts
from stream_app.pipeline.keys import entity_key, source_key
from stream_app.pipeline.ports import AggregateStore

PAGE = 1000


async def all_names(store: AggregateStore) -> list[str]:
    names: list[str] = []
    while True:
        page = await store.entities(names[-1] if names else None, PAGE)
        names.extend(page)
        if len(page) < PAGE:
            return names


async def store_buckets(store: AggregateStore, first: int, last: int) -> dict[tuple[str, int], Counts]:
    """(aggregate key, minute) -> counts for every non-empty minute bucket in [first, last]."""
    keys = [source_key(s) for s in await store.sources()]
    for entity in await all_names(store):
        keys.append(entity_key(entity))
        keys.extend(entity_key(entity, source) for source in await store.entity_sources(entity))
    out: dict[tuple[str, int], Counts] = {}
    for key in keys:
        for minute, counts in (await store.minutes(key, first, last)).items():
            if counts.volume:
                out[(key, minute)] = counts
    return out
