"""Turn raw Kafka bytes into a `NormalizedEvent`, or raise `InvalidRecord` with a stable reason."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import ValidationError

from schemas.models import DeadLetter, NormalizedEvent, Review, SocialPost
from stream_app.errors import InvalidRecord

Kind = Literal["post", "review"]
MAX_PAYLOAD_BYTES = 1_000_000  # under the broker's message.max.bytes (1,048,588 by default)
DEAD_LETTER_MAX_ORIGINAL_BYTES = 64 * 1024  # base64 of this, plus the envelope, stays far below it
_CONTRACT: dict[Kind, type[SocialPost] | type[Review]] = {"post": SocialPost, "review": Review}


def _reason_for(exc: ValidationError) -> str:
    first = exc.errors()[0]
    kind = first["type"]
    if kind == "missing":
        return "missing_field"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "wrong_type"
    return "invalid_value"


def parse_record(
    raw: bytes | None,
    kind: Kind,
    *,
    topic: str,
    partition: int,
    offset: int,
    max_text_chars: int,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> NormalizedEvent:
    if raw is None or len(raw) == 0:
        raise InvalidRecord("malformed_json", "empty payload")
    if len(raw) > max_payload_bytes:
        raise InvalidRecord("payload_too_large", f"{len(raw)} bytes > {max_payload_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord("bad_utf8", str(exc)) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("malformed_json", str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidRecord("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    try:
        record: SocialPost | Review = _CONTRACT[kind].model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise InvalidRecord(_reason_for(exc), detail) from None
    text = record.text
    if not text.strip():
        raise InvalidRecord("empty_text", "text is empty or whitespace only")
    if len(text) > max_text_chars:
        raise InvalidRecord("text_too_long", f"{len(text)} characters > {max_text_chars}")
    fields = record.model_dump()
    created = fields["created_at"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    # Fields already validated by the input contract: no second validation per record.
    return NormalizedEvent.model_construct(
        id=fields["id"],
        source=kind,
        platform=fields["platform"],
        text=text,
        author=fields.get("author"),
        created_at=created,
        product=fields.get("product"),
        brand=fields.get("brand"),
        rating=fields.get("rating"),
        lang=fields.get("lang"),
        url=fields.get("url"),
        topic=topic,
        partition=partition,
        offset=offset,
    )


def make_dead_letter(
    raw: bytes | None,
    error: InvalidRecord,
    *,
    topic: str,
    partition: int,
    offset: int,
    max_original_bytes: int = DEAD_LETTER_MAX_ORIGINAL_BYTES,
) -> DeadLetter:
    """The original is embedded up to `max_original_bytes` (so the dead letter stays under the
    broker's message size); its full length and SHA-256 always travel with it."""
    original = raw or b""
    return DeadLetter(
        reason=error.reason,
        error=error.detail[:2000],
        original_b64=base64.b64encode(original[:max_original_bytes]).decode("ascii"),
        original_length=len(original),
        original_sha256=hashlib.sha256(original).hexdigest(),
        original_truncated=len(original) > max_original_bytes,
        topic=topic,
        partition=partition,
        offset=offset,
        received_at=datetime.now(UTC),
    )
