"""Entity extraction: aliases, word boundaries, Unicode, cashtags beside punctuation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.pipeline.entities import EntityExtractor, WatchEntity, WatchList

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    watch = WatchList(
        [
            WatchEntity("Tesla", ("$TSLA", "@Tesla", "tesla motors", "tesla")),
            WatchEntity("Café Nero", ("cafe nero", "café nero")),
        ]
    )
    return EntityExtractor(watch)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tesla deliveries beat estimates", ["Tesla"]),
        ("TESLA MOTORS recalls again", ["Tesla"]),
        ("bought $TSLA today", ["Tesla"]),
        ("($TSLA), $tsla! and $TSLA.", ["Tesla"]),
        ("@Tesla please fix this", ["Tesla"]),
        ("Teslas are everywhere", []),
        ("nikola-tesla was an inventor", ["Tesla"]),
        ("teslamotors is not an alias", []),
        ("coffee at Café Nero", ["Café Nero"]),
        ("CAFÉ NERO again", ["Café Nero"]),
        ("$AAPL and $MSFT up", ["$AAPL", "$MSFT"]),
        ("price is $5 today", []),
        ("US$AAPL is not a cashtag", []),
        ("#Tesla and #EVs", ["#evs", "#tesla"]),
        ("@someone_unknown says hi", []),
        ("", []),
    ],
)
def test_extraction(extractor, text, expected):
    assert extractor.extract(text) == expected


def test_review_product_and_brand_fields(extractor):
    assert extractor.extract("broke in a day", product="Model Y", brand="tesla") == ["Model Y", "Tesla"]


def test_demo_watch_list_loads_and_matches():
    extractor = EntityExtractor(WatchList.load(REPO / "deploy" / "watchlist" / "demo.yaml"))
    assert extractor.extract("Honestly, @VeltroMotors is a total disaster #fail") == ["#fail", "Veltro Motors"]
    assert extractor.extract("$QNTA up, nimbus air late") == ["Nimbus Air", "Quanta Bank"]


@given(st.text(max_size=300))
def test_never_crashes_and_is_sorted(text):
    extractor = EntityExtractor(WatchList([WatchEntity("Tesla", ("tesla", "$TSLA"))]))
    result = extractor.extract(text)
    assert result == sorted(set(result))
