"""Dead letters carry the reason, a bounded error and the record's own bytes: never the
settings, the environment, or a traceback, whatever an attacker writes on the input topics."""

from __future__ import annotations

import base64
import os
import time

import orjson
import pytest

from schemas.models import DeadLetter
from stream_app.pipeline.process import RawRecord
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.settings import load_settings
from stream_app.testing.fakes import ListPublisher, make_processor

SECRETS = {
    "SM_KAFKA_SASL_PASSWORD": "kafka-pass-Zq81",
    "SM_REDIS_URL": "rediss://svc:redis-pass-Hw27@redis.internal:6380/0",
    "SM_WEB_TOKEN": "web-token-Lp55",
    "SM_ALERT_WEBHOOK_URL": "https://hooks.example/services/T0/B0/hook-secret-Kd90",
    "UNRELATED_CLOUD_KEY": "cloud-key-Vv13",
}
FIELDS = {
    "reason",
    "error",
    "original_b64",
    "original_length",
    "original_sha256",
    "original_truncated",
    "topic",
    "partition",
    "offset",
    "received_at",
}


def _hostile_records() -> list[bytes]:
    """One for every dead-letter reason, several naming settings or asking for the environment."""
    post = {"id": "p1", "text": "hi", "created_at": "2026-03-01T12:00:00Z", "platform": "x"}
    return [
        b"{not json ${SM_KAFKA_SASL_PASSWORD}",
        b"\xff\xfe%(SM_WEB_TOKEN)s",
        b'["settings", "environ"]',
        orjson.dumps({"id": "p2", "text": "{settings.kafka_sasl_password}"}),  # missing fields
        orjson.dumps({**post, "created_at": {"$env": "SM_REDIS_URL"}}),  # wrong type
        orjson.dumps({**post, "platform": "x" * 500}),
        orjson.dumps({**post, "text": "   "}),
        orjson.dumps({**post, "text": "{0.__init__.__globals__} " * 2000}),  # over max_text_chars
        b"{" + b" " * 2_000_000 + b"}",  # over the payload cap
        b"",
        orjson.dumps({**post, "created_at": "9999-01-01T00:00:00Z", "text": "${SM_WEB_TOKEN}"}),
        orjson.dumps({**post, "created_at": "2001-01-01T00:00:00Z", "text": "%(SM_REDIS_URL)s"}),
    ]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


async def test_dead_letters_hold_only_the_record_and_the_reason(secret_env: dict[str, str]) -> None:
    settings = load_settings(max_text_chars=1000)  # reads the secrets from the environment, as a worker does
    publisher = ListPublisher()
    processor = make_processor(publisher, max_text_chars=settings.max_text_chars, bounds=EventTimeBounds())
    records = _hostile_records()
    now = time.monotonic()
    await processor.process([RawRecord("posts", 0, i, raw, now) for i, raw in enumerate(records)])

    assert len(publisher.dead) == len(records)
    assert len({d.reason for d in publisher.dead}) == len(DeadLetter.model_fields["reason"].annotation.__args__)
    secrets = [*SECRETS.values(), settings.model_dump_json(), repr(settings)]
    environment = [v for v in secret_env.values() if len(v) >= 8]
    for letter, raw in zip(publisher.dead, records, strict=True):
        wire = letter.model_dump_json()
        assert set(orjson.loads(wire)) == FIELDS
        kept = base64.b64decode(letter.original_b64)
        assert letter.original_length == len(raw)  # the record itself (capped, never padded), nothing added
        assert kept == raw if not letter.original_truncated else raw.startswith(kept) and len(kept) < len(raw)
        assert len(letter.error) <= 2000
        for text in (wire, letter.error):
            assert "Traceback" not in text and 'File "' not in text
            assert not [s for s in secrets if s in text], letter.reason
            assert not [v for v in environment if v in text and v.encode() not in raw], letter.reason
