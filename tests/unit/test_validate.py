"""Validation and normalisation, including every kind of bad input."""

from __future__ import annotations

import orjson
import pytest

from stream_app.errors import InvalidRecord
from stream_app.pipeline.validate import MAX_PAYLOAD_BYTES, make_dead_letter, parse_record

GOOD_POST = {
    "id": "p1",
    "text": "love it",
    "author": "@a",
    "created_at": "2026-03-01T12:00:00Z",
    "platform": "X",
    "lang": "en",
    "url": "https://e.example/1",
}
GOOD_REVIEW = {
    "id": "r1",
    "text": "broke in a day",
    "rating": 1,
    "product": "mug",
    "brand": "Orbital",
    "author": "b",
    "created_at": "2026-03-01T12:00:00+01:00",
}


def parse(raw: bytes | None, kind: str = "post", max_chars: int = 1000):
    return parse_record(raw, kind, topic="t", partition=2, offset=7, max_text_chars=max_chars)  # type: ignore[arg-type]


def test_post_normalises_with_kafka_position():
    event = parse(orjson.dumps(GOOD_POST))
    assert (event.id, event.source, event.platform, event.partition, event.offset) == ("p1", "post", "X", 2, 7)
    assert event.created_at.tzinfo is not None


def test_review_normalises_and_keeps_product_and_rating():
    event = parse(orjson.dumps(GOOD_REVIEW), "review")
    assert (event.source, event.product, event.brand, event.rating, event.platform) == (
        "review",
        "mug",
        "Orbital",
        1,
        "reviews",
    )


def test_naive_timestamp_is_taken_as_utc():
    event = parse(orjson.dumps({**GOOD_POST, "created_at": "2026-03-01T12:00:00"}))
    assert event.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{oops", "malformed_json"),
        (b"", "malformed_json"),
        (None, "malformed_json"),
        (b"\xc3\x28 not utf8", "bad_utf8"),
        (b"\x00\x01\x02\xff", "bad_utf8"),
        (b"42", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (orjson.dumps({k: v for k, v in GOOD_POST.items() if k != "text"}), "missing_field"),
        (orjson.dumps({k: v for k, v in GOOD_POST.items() if k != "id"}), "missing_field"),
        (orjson.dumps({**GOOD_POST, "text": 12}), "wrong_type"),
        (orjson.dumps({**GOOD_POST, "text": ["a"]}), "wrong_type"),
        (orjson.dumps({**GOOD_POST, "created_at": "yesterday"}), "wrong_type"),
        (orjson.dumps({**GOOD_POST, "text": ""}), "empty_text"),
        (orjson.dumps({**GOOD_POST, "text": " \n\t "}), "empty_text"),
        (orjson.dumps({**GOOD_POST, "text": "x" * 1001}), "text_too_long"),
        (orjson.dumps({**GOOD_POST, "id": ""}), "invalid_value"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
    ],
)
def test_bad_input_raises_with_a_stable_reason(raw, reason):
    with pytest.raises(InvalidRecord) as caught:
        parse(raw)
    assert caught.value.reason == reason
    assert caught.value.detail


def test_review_rating_out_of_range_is_invalid():
    with pytest.raises(InvalidRecord) as caught:
        parse(orjson.dumps({**GOOD_REVIEW, "rating": 9}), "review")
    assert caught.value.reason == "invalid_value"


def test_dead_letter_keeps_original_bytes_and_position():
    import base64

    raw = b"\xff\xfe bad"
    with pytest.raises(InvalidRecord) as caught:
        parse(raw)
    letter = make_dead_letter(raw, caught.value, topic="posts", partition=1, offset=99)
    assert base64.b64decode(letter.original_b64) == raw
    assert (letter.topic, letter.partition, letter.offset, letter.reason) == ("posts", 1, 99, "bad_utf8")
