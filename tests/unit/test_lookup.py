"""Entity lookups: case-insensitive, through watch-list aliases, and a 404 with the closest names."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.pipeline.counts import Counts
from stream_app.pipeline.entities import WatchEntity, WatchList
from stream_app.pipeline.lookup import alias_table, resolve
from stream_app.resources import demo_watchlist
from stream_app.testing.fakes import MinuteStore
from stream_app.web.api import get_entity, get_series, get_top

TESLA = WatchList([WatchEntity("Tesla", ("$TSLA", "@Tesla", "tesla motors"))])


TYPED = ["Tesla", "tesla", "TESLA", "$TSLA", "$tsla", "TSLA", "@Tesla", "@tesla", "Tesla Motors"]


@pytest.mark.parametrize("typed", TYPED)
def test_names_and_aliases_reach_the_entity(typed: str) -> None:
    assert resolve(typed, ["Tesla", "$ABC"], alias_table(TESLA)).entity == "Tesla"


def test_demo_watchlist_aliases_and_case() -> None:
    aliases = alias_table(WatchList.load(demo_watchlist()))
    stored = ["Veltro Motors", "Nimbus Air", "#coffee", "$ABC"]
    for typed in ("veltro motors", "VLTR", "$vltr", "@veltromotors", "#veltro", "veltro"):
        assert resolve(typed, stored, aliases).entity == "Veltro Motors", typed
    assert resolve("abc", stored, aliases).entity == "$ABC"  # a stored cashtag, without its $
    assert resolve("#COFFEE", stored, aliases).entity == "#coffee"
    assert resolve("Quanta Bank", stored, aliases).entity == "Quanta Bank"  # watch-listed, no data yet


def test_unknown_names_get_the_closest_suggestions() -> None:
    found = resolve("Veltro Motor", ["Veltro Motors", "Nimbus Air"])
    assert found.entity == "Veltro Motors" or found.suggestions[0] == "Veltro Motors"
    missing = resolve("Veltor Moters", ["Veltro Motors", "Nimbus Air", "Orbital Coffee"])
    assert missing.entity is None and missing.suggestions == ["Veltro Motors"]
    assert resolve("zzzz", ["Veltro Motors"]).suggestions == []


STORE = MinuteStore(
    {
        "ent:Veltro Motors": Counts.of(3, 1, 0, -2.0),
        "ent:Nimbus Air": Counts.of(0, 5, 5, 3.0),
        "ent:$ONE": Counts.of(1, 0, 0, -1.0),
    }
)


async def test_api_resolves_aliases_and_404s_with_suggestions() -> None:
    aliases = alias_table(WatchList.load(demo_watchlist()))
    status, body = await get_entity(STORE, "VLTR", {"window": "5m"}, aliases)  # type: ignore[arg-type]
    assert status == 200 and body["entity"] == "Veltro Motors" and body["volume"] == 20
    status, body = await get_entity(STORE, "nimbus air", {}, aliases)  # type: ignore[arg-type]
    assert status == 200 and body["entity"] == "Nimbus Air"
    status, body = await get_entity(STORE, "Veltro Moters", {}, aliases)  # type: ignore[arg-type]
    assert status == 404 and body["suggestions"][0] == "Veltro Motors" and "Veltro Moters" in body["error"]
    status, body = await get_series(STORE, "vltr", {"since": "0"}, aliases)  # type: ignore[arg-type]
    assert status == 400  # since is checked before the name
    status, body = await get_entity(STORE, "nobody", {"window": "5x"}, aliases)  # type: ignore[arg-type]
    assert status == 400  # a bad window is a 400 whatever the name


async def test_top_leaves_out_thin_entities_by_default_and_says_so() -> None:
    status, body = await get_top(STORE, {"by": "negative_share", "window": "1m"})  # type: ignore[arg-type]
    assert status == 400 and "5m, 15m, 1h, 6h, 24h" in body["error"]  # the windows the leaderboard keeps
    status, body = await get_top(STORE, {"by": "negative_share", "window": "5m"})  # type: ignore[arg-type]
    assert status == 200 and body["min_volume"] == 10 and "10" in body["note"]
    assert [row["entity"] for row in body["entities"]] == ["Veltro Motors", "Nimbus Air"]  # $ONE: 5 posts
    status, body = await get_top(STORE, {"by": "negative_share", "window": "5m", "min_volume": "1"})  # type: ignore[arg-type]
    assert body["entities"][0]["entity"] == "$ONE" and body["min_volume"] == 1


def test_watchlist_file_shapes_fail_with_the_file_named(tmp_path: Path) -> None:
    from stream_app.errors import WatchListError

    cases = {
        "bad.yaml": "entities:\n  - name: [unclosed\n",
        "list.yaml": "- name: A\n",
        "noname.yaml": "entities:\n  - aliases: [a]\n",
        "aliases.yaml": "entities:\n  - name: A\n    aliases: a\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(WatchListError) as caught:
            WatchList.load(tmp_path / name)
        assert str(tmp_path / name) in caught.value.one_line() and "SM_WATCHLIST" in caught.value.one_line()
