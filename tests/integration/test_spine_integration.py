"""The spine on real services: Kafka (KRaft), a real worker with the ONNX model, Redis."""

from __future__ import annotations

import orjson
import pytest

from stream_app.pipeline.counts import minute_of
from stream_app.testing.generate import generate_stream
from stream_app.wiring import create_topics
from tests.support.stack import settings_from
from tests.support.streamkit import (
    assert_counts_equal,
    drain,
    oracle_from_scored,
    produce,
    redis_counts,
    same_volumes,
    settle,
)

pytestmark = pytest.mark.integration

INVALID = [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe\xfa broken utf8", "bad_utf8"),
    (b'["a", "list"]', "not_an_object"),
    (b'{"id": "x1", "platform": "x", "created_at": "2026-01-01T00:00:00Z"}', "missing_field"),
    (b'{"id": "x2", "text": 42, "platform": "x", "created_at": "2026-01-01T00:00:00Z"}', "wrong_type"),
    (b'{"id": "x3", "text": "   ", "platform": "x", "created_at": "2026-01-01T00:00:00Z"}', "empty_text"),
    (
        orjson.dumps({"id": "x4", "text": "y" * 20_001, "platform": "x", "created_at": "2026-01-01T00:00:00Z"}),
        "text_too_long",
    ),
    (b"", "malformed_json"),
]


def _feed(n_minutes: int, per_minute: int, seed: int) -> tuple[list[dict], list[dict]]:
    posts, reviews = [], []
    for kind, record in generate_stream(n_minutes, per_minute, seed):
        (posts if kind == "post" else reviews).append(record)
    return posts, reviews


def _expected_minutes(records: list[dict]) -> set[int]:
    from datetime import datetime

    return {minute_of(datetime.fromisoformat(r["created_at"]).timestamp()) for r in records}


def test_valid_and_invalid_records_flow_through_real_services(stack_env, worker_factory):
    settings = settings_from(stack_env)
    create_topics(settings)
    worker = worker_factory()
    worker.wait_ready()
    posts, reviews = _feed(4, 50, seed=11)
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(p) for p in posts])
    produce(settings.kafka_bootstrap, settings.topic_reviews, [orjson.dumps(r) for r in reviews])
    produce(settings.kafka_bootstrap, settings.topic_posts, [raw for raw, _ in INVALID])

    valid = len(posts) + len(reviews)
    scored = drain(settings.kafka_bootstrap, settings.topic_scored, valid)
    dead = drain(settings.kafka_bootstrap, settings.topic_dead_letter, len(INVALID))

    ids = [event["id"] for event in scored]
    assert sorted(ids) == sorted(r["id"] for r in posts + reviews), "each valid record exactly once"
    assert all(event["label"] in {"negative", "neutral", "positive"} for event in scored)
    assert sorted(d["reason"] for d in dead) == sorted(reason for _, reason in INVALID)
    assert all(d["topic"] == settings.topic_posts and d["offset"] >= 0 for d in dead)

    sources = {e["platform"].lower() for e in scored}
    expected = oracle_from_scored(scored)
    minutes = _expected_minutes(posts + reviews)
    actual = settle(lambda: redis_counts(settings, sources, minutes), lambda a: same_volumes(a, expected))
    assert_counts_equal(actual, expected)
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{worker.env['SM_WEB_PORT']}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    assert 'sm_dead_letters_total{reason="bad_utf8"} 1.0' in exposition
    assert f'sm_messages_in_total{{topic="{settings.topic_posts}"}}' in exposition
    assert 'sm_inference_stage_seconds_count{stage="forward"}' in exposition
    assert worker.alive(), worker.log_tail()


def test_kill_9_mid_stream_keeps_counts_exact(stack_env, worker_factory):
    settings = settings_from(stack_env)
    create_topics(settings)
    posts, _ = _feed(6, 100, seed=23)
    first = worker_factory()
    first.wait_ready()
    produce(settings.kafka_bootstrap, settings.topic_posts, [orjson.dumps(p) for p in posts])
    # Let it get part of the way, then crash it without any chance to commit.
    drain(settings.kafka_bootstrap, settings.topic_scored, len(posts) // 3, timeout=120, settle=0)
    first.kill9()
    second = worker_factory()
    second.wait_ready()
    scored = drain(settings.kafka_bootstrap, settings.topic_scored, len(posts), timeout=240)
    assert {e["id"] for e in scored} == {p["id"] for p in posts}, "nothing lost"
    expected = oracle_from_scored(scored)
    actual = settle(
        lambda: redis_counts(settings, {p["platform"] for p in posts}, _expected_minutes(posts)),
        lambda a: same_volumes(a, expected),
    )
    # Redelivered records may appear twice in the enriched topic, never twice in the counts.
    assert_counts_equal(actual, expected)
    assert second.alive(), second.log_tail()
