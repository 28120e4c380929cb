"""Key components are escaped injectively, and plain names keep their readable keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream_app.pipeline.keys import (
    RedisKeys,
    escape,
    parse_aggregate_key,
    shard_of,
    source_key,
    unescape,
)
from stream_app.pipeline.keys import entity_key as aggregate_key
from stream_app.pipeline.keys import record_keys as aggregate_keys


def posts_key(prefix: str, entity: str) -> str:
    return RedisKeys(prefix).posts(entity)


names = st.text(min_size=1, max_size=30)
tricky = st.text(alphabet=st.sampled_from("a|:%Z{} 2\x00\n\u00e9"), min_size=1, max_size=12)
any_name = st.one_of(names, tricky)


def test_plain_names_keep_their_keys() -> None:
    assert aggregate_key("Veltro Motors", "reddit") == "ent:Veltro Motors|src:reddit"
    assert aggregate_key("$TSLA") == "ent:$TSLA"
    assert source_key("x") == "src:x"
    assert aggregate_keys("x", ["Tesla"]) == ("src:x", "ent:Tesla", "ent:Tesla|src:x")


def test_a_separator_in_a_brand_cannot_reach_another_entitys_keys() -> None:
    forged = aggregate_keys("x", ["Veltro Motors|src:reddit"])
    real = aggregate_keys("reddit", ["Veltro Motors"])
    assert not set(forged) & set(real)
    assert aggregate_key("Veltro Motors|src:reddit") == "ent:Veltro Motors%7Csrc%3Areddit"
    assert source_key("x:1") == "src:x%3A1"


@given(any_name)
def test_unescape_inverts_escape(name: str) -> None:
    assert unescape(escape(name)) == name
    assert not set(escape(name)) & {"|", ":", "{", "}"}  # braces would move a key's Redis Cluster slot


@given(any_name, any_name)
def test_escape_is_injective(a: str, b: str) -> None:
    if a != b:
        assert escape(a) != escape(b)
        assert posts_key("sm", a) != posts_key("sm", b)


@given(st.tuples(any_name, st.one_of(st.none(), any_name)), st.tuples(any_name, st.one_of(st.none(), any_name)))
def test_aggregate_keys_are_injective_and_parse_back(
    first: tuple[str, str | None], second: tuple[str, str | None]
) -> None:
    assert parse_aggregate_key(aggregate_key(*first)) == first
    if first != second:
        assert aggregate_key(*first) != aggregate_key(*second)
    assert parse_aggregate_key(source_key(first[0])) == (None, first[0])


@given(any_name, st.lists(any_name, max_size=3), st.integers(1, 64))
def test_an_entitys_aggregates_share_one_shard_and_one_hash_tag(entity: str, sources: list[str], shards: int) -> None:
    keys = RedisKeys("sm", shards)
    own = shard_of(aggregate_key(entity), shards)
    assert all(shard_of(aggregate_key(entity, s), shards) == own for s in sources)
    tags = {key.split("}", 1)[0] for key in [keys.minutes(aggregate_key(entity, s), 0) for s in [*sources, None]]}
    tags |= {keys.hours(aggregate_key(entity), 0).split("}", 1)[0], keys.posts(entity).split("}", 1)[0]}
    tags |= {keys.fence(own).split("}", 1)[0], keys.window(own, 5)[0].split("}", 1)[0]}
    assert tags == {f"sm:{{s{own:02d}"}  # one hash tag: one Redis Cluster slot for the shard's atomic step
