"""Oracle property test: offset-fenced streaming counts equal a batch recomputation,
for random streams with out-of-order event times, several partitions and redelivery."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.pipeline.counts import CountedRecord, Counts, recompute
from tests.fakes import MemoryCountsSink

LABELS = ["negative", "neutral", "positive"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[CountedRecord], list[list[CountedRecord]]]:
    partitions = draw(st.integers(1, 4))
    per_partition: list[list[CountedRecord]] = []
    for p in range(partitions):
        n = draw(st.integers(0, 30))
        per_partition.append(
            [
                CountedRecord(
                    "t",
                    p,
                    offset,
                    draw(st.sampled_from(["x", "reddit", "reviews"])),
                    draw(st.floats(1.7e9, 1.7e9 + 3600, allow_nan=False)),
                    draw(st.sampled_from(LABELS)),
                    draw(st.floats(-1, 1, allow_nan=False)),
                )
                for offset in range(n)
            ]
        )
    # Deliver in batches; after any batch, a "crash" may rewind a partition by a few records.
    batches: list[list[CountedRecord]] = []
    cursors = [0] * partitions
    while any(c < len(per_partition[p]) for p, c in enumerate(cursors)):
        batch: list[CountedRecord] = []
        for p in range(partitions):
            take = draw(st.integers(0, 8))
            batch.extend(per_partition[p][cursors[p] : cursors[p] + take])
            cursors[p] = min(len(per_partition[p]), cursors[p] + take)
            if draw(st.booleans()) and cursors[p] > 0:
                cursors[p] = max(0, cursors[p] - draw(st.integers(0, 5)))  # redelivery
        batches.append(batch)
    return [r for part in per_partition for r in part], batches


@given(streams())
@settings(max_examples=150, deadline=None)
def test_streaming_counts_equal_batch_recomputation(case):
    records, batches = case
    sink = MemoryCountsSink()
    for batch in batches:
        asyncio.run(sink.apply(batch))
    expected = recompute(records)
    actual = sink.totals()
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        assert (got.negative, got.neutral, got.positive) == (want.negative, want.neutral, want.positive)
        assert abs(got.score_sum - want.score_sum) < 1e-9 * max(1, want.volume)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.floats(-1e6, 1e6, allow_nan=False))
def test_counts_encoding_round_trips(neg, neu, pos, total):
    counts = Counts(neg, neu, pos, total)
    assert Counts.decode(counts.encode()) == counts
