"""Oracle property test: offset-fenced streaming counts equal a batch recomputation,
for random streams with out-of-order and late event times, entities, several partitions
and redelivery after simulated crashes."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.engine.types import LABELS
from stream_app.pipeline.counts import CountedRecord, Counts, recompute
from stream_app.pipeline.keys import record_keys
from stream_app.testing.fakes import MemoryCountsSink


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[CountedRecord], list[list[CountedRecord]], float]:
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
                    record_keys(
                        draw(st.sampled_from(["x", "reddit", "reviews"])),
                        draw(st.lists(st.sampled_from(["Tesla", "$AAPL", "#fail"]), unique=True, max_size=2)),
                    ),
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
    lateness = draw(st.sampled_from([60.0, 300.0, 1800.0, float("inf")]))
    return [r for part in per_partition for r in part], batches, lateness


@given(streams())
@settings(max_examples=150, deadline=None)
def test_streaming_counts_equal_batch_recomputation(case):
    records, batches, lateness = case
    sink = MemoryCountsSink(allowed_lateness_s=lateness)
    for batch in batches:
        asyncio.run(sink.apply(batch))
    expected, late = recompute(records, lateness)
    actual = sink.totals()
    assert sink.late() == late, "late events are counted, never silently dropped"
    on_time = sum(c.volume for (key, _), c in expected.items() if key.startswith("src:"))
    assert on_time + late == len(records)
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        assert (got.negative, got.neutral, got.positive) == (want.negative, want.neutral, want.positive)
        assert abs(got.score_sum - want.score_sum) < 1e-9 * max(1, want.volume)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.floats(-1e6, 1e6, allow_nan=False))
def test_counts_encoding_round_trips(neg, neu, pos, total):
    counts = Counts.of(neg, neu, pos, total)
    assert Counts.decode(counts.encode()) == counts
