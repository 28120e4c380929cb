"""Tokenization: bucketing, sorting by length, restoring input order, hostile text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.engine.tokenize import BucketingTokenizer, bucket_length, sanitize
from stream_app.settings import DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def tokenizer() -> BucketingTokenizer:
    return BucketingTokenizer.from_dir(DEFAULT_MODEL_DIR, max_length=128, slice_size=4)


def test_bucket_length_rounds_up_to_the_next_bucket():
    assert [bucket_length(n, (16, 32, 64, 128)) for n in (1, 16, 17, 33, 128, 500)] == [16, 16, 32, 64, 128, 128]


def test_buckets_never_exceed_max_length():
    small = BucketingTokenizer.from_dir(DEFAULT_MODEL_DIR, max_length=40)
    assert small.buckets == [8, 12, 16, 20, 24, 32, 40]
    (piece,) = small.encode(["word " * 300])
    assert piece.input_ids.shape == (1, 40)


def test_slices_are_sorted_by_length_and_padded_to_buckets(tokenizer):
    texts = ["a " * 50, "hi", "medium sized text here " * 2, "ok", "x " * 20, "tiny"]
    slices = tokenizer.encode(texts)
    widths = [s.input_ids.shape[1] for s in slices]
    assert widths == sorted(widths)
    assert all(w in tokenizer.buckets for w in widths)
    lengths = [int(s.attention_mask.sum(axis=1).max()) for s in slices]
    assert lengths == sorted(lengths)


def test_positions_cover_every_input_once(tokenizer):
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(23)]
    positions = np.concatenate([s.positions for s in tokenizer.encode(texts)])
    assert sorted(positions.tolist()) == list(range(23))


def test_each_row_holds_its_own_text(tokenizer):
    texts = ["alpha", "beta gamma delta epsilon", "zeta"]
    for piece in tokenizer.encode(texts):
        for row, pos in enumerate(piece.positions):
            ids = piece.input_ids[row][piece.attention_mask[row] == 1].tolist()
            expected = tokenizer._tokenizer.encode(texts[pos]).ids
            assert ids == expected


@pytest.mark.parametrize("text", ["", "   ", "😀🔥💯", "a\ud800b", "\udfff", "\x00\x00", "x" * 1_000_000, None, 17])
def test_hostile_inputs_still_tokenize(tokenizer, text):
    (piece,) = tokenizer.encode([text])
    assert piece.input_ids.shape[1] <= 128
    assert piece.attention_mask.sum() >= 2  # at least [CLS] and [SEP]


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_sanitize_always_yields_encodable_text(text):
    sanitize(text).encode("utf-8")  # raises on lone surrogates if any survived
    assert "\x00" not in sanitize(text)
