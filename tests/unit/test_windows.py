"""Sliding windows from minute buckets, and the cardinality bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.pipeline.counts import Counts
from stream_app.pipeline.windows import (
    EntityAdmission,
    parse_window,
    series,
    sum_buckets,
    window_minutes,
)


@pytest.mark.parametrize(("text", "minutes"), [("1m", 1), ("5m", 5), ("1h", 60), ("24h", 1440), ("7d", 10080)])
def test_parse_window(text, minutes):
    assert parse_window(text) == minutes


@pytest.mark.parametrize("text", ["", "5", "0m", "5s", "m5", "8d", "-1h", "1.5h"])
def test_bad_windows_are_rejected_with_a_message(text):
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def test_window_ends_in_the_current_minute_and_slides():
    assert window_minutes(1_000_000_030, 5) == (999_999_780, 1_000_000_020)
    assert window_minutes(1_000_000_090, 5) == (999_999_840, 1_000_000_080)


def test_window_stats_negative_share():
    stats = Counts.of(3, 5, 2, -0.5)
    assert (stats.volume, stats.negative_share, stats.mean_score) == (10, 0.3, -0.05)
    assert Counts().negative_share == 0.0


@given(st.dictionaries(st.integers(0, 30).map(lambda m: m * 60), st.integers(0, 20), max_size=31), st.integers(1, 10))
def test_series_partitions_the_range_without_loss(volumes, step):
    buckets = {m: Counts.of(v, 0, 0, 0.0) for m, v in volumes.items()}
    points = series(buckets, 0, 30 * 60, step)
    assert sum(p.volume for _, p in points) == sum_buckets(buckets, 0, 30 * 60).volume
    starts = [s for s, _ in points]
    assert starts == sorted(starts) and starts[0] == 0


def test_admission_keeps_watch_list_and_bounds_the_rest():
    admission = EntityAdmission({"Tesla"}, max_tracked=2, min_mentions=2, max_candidates=50)
    assert admission.filter(["Tesla"]) == ["Tesla"]
    assert admission.filter(["#a"]) == []
    assert admission.filter(["#a"]) == ["#a"]
    for tag in ("#b", "#b", "#c", "#c", "#c"):
        admission.filter([tag])
    assert admission.tracked == {"#a", "#b"}
    assert admission.filter(["#c", "Tesla"]) == ["Tesla"]
    assert admission.dropped == 6


def test_a_flood_of_one_off_hashtags_stays_bounded():
    admission = EntityAdmission(set(), max_tracked=10, min_mentions=3, max_candidates=1000)
    for i in range(50_000):
        admission.filter([f"#viral{i}"])
    assert len(admission.tracked) == 0
    assert len(admission._candidates) <= 1001
    assert admission.dropped == 50_000
