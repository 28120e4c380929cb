"""Typed event contracts. The JSON Schema files beside this module are generated from these
models (`sentiment-monitor schemas export`) and a contract test keeps them in step."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["negative", "neutral", "positive"]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)


class SocialPost(_Contract):
    """A post from a social platform, as producers write it to the posts topic."""

    id: str = Field(min_length=1, max_length=256)
    text: str
    author: str | None = None
    created_at: datetime
    platform: str = Field(min_length=1, max_length=64)
    lang: str | None = Field(None, max_length=16)
    url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Review(_Contract):
    """A product review, as producers write it to the reviews topic."""

    id: str = Field(min_length=1, max_length=256)
    text: str
    rating: int = Field(ge=1, le=5)
    product: str = Field(min_length=1, max_length=256)
    brand: str | None = Field(None, max_length=256)
    author: str | None = None
    created_at: datetime
    platform: str = Field("reviews", max_length=64)


class NormalizedEvent(_Contract):
    """What the pipeline scores: either input kind, plus where it came from in Kafka."""

    id: str
    source: Literal["post", "review"]
    platform: str
    text: str
    author: str | None = None
    created_at: datetime
    product: str | None = None
    brand: str | None = None
    rating: int | None = None
    lang: str | None = None
    url: str | None = None
    topic: str
    partition: int
    offset: int


class ScoredEvent(_Contract):
    """Published to the enriched topic for every valid input record."""

    id: str
    source: Literal["post", "review"]
    platform: str
    created_at: datetime
    text: str = Field(description="The input text, cut to 280 characters")
    author: str | None = None
    product: str | None = None
    brand: str | None = None
    label: Label
    probabilities: dict[Label, float]
    score: float = Field(ge=-1.0, le=1.0, description="p_positive - p_negative")
    entities: list[str] = Field(default_factory=list)
    model_name: str
    model_version: str
    model_revision: str | None = Field(
        None, description="Digest of the model directory's files (weights, labels, calibration) that scored it"
    )
    processed_at: datetime
    processing_ms: float = Field(ge=0, description="Time from receipt to scoring, in ms")
    domain: Literal["social", "finance", "reviews"] = Field(
        "social", description="The model head that scored it (docs/model.md: reviews, tickers, the rest)"
    )
    counted: list[str] | None = Field(
        None, description="The entities whose aggregates it fed (the tracked subset of `entities`)"
    )
    topic: str | None = Field(None, description="The input topic it came from")
    partition: int | None = Field(None, description="The input partition it came from")
    offset: int | None = Field(None, description="Its offset in that partition: with them, a rebuild is exact")


class DeadLetter(_Contract):
    """An input record that could not be scored, with the reason, and its original bytes."""

    reason: Literal[
        "malformed_json",
        "bad_utf8",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "invalid_value",
        "empty_text",
        "text_too_long",
        "payload_too_large",
        "future_timestamp",
        "ancient_timestamp",
    ]
    error: str
    original_b64: str = Field(description="The original bytes, base64, cut to the configured cap")
    original_length: int | None = Field(None, description="Length in bytes of the whole original")
    original_sha256: str | None = Field(None, description="SHA-256 (hex) of the whole original")
    original_truncated: bool = Field(False, description="True when original_b64 holds only a prefix")
    topic: str
    partition: int
    offset: int
    received_at: datetime


class AlertPost(_Contract):
    id: str
    created_at: datetime
    source: str
    score: float
    snippet: str = Field(max_length=200)


class AlertTerm(_Contract):
    term: str
    z: float = Field(description="Log-odds z-score of the term in negative posts against the baseline")
    current: int = Field(description="Occurrences in the window's negative posts")
    baseline: int = Field(description="Occurrences in the baseline sample")


class SourceShare(_Contract):
    source: str
    volume: int
    negative_share: float


class ShareAndVolume(_Contract):
    negative_share: float
    volume: float = Field(description="Posts in one short window (the baseline's is its expected volume)")


class AlertStatistic(_Contract):
    method: Literal["bernoulli_cusum"] = "bernoulli_cusum"
    cusum_llr: float = Field(description="Page's CUSUM of the per-post log-likelihood ratio, in nats")
    threshold: float = Field(description="The CUSUM threshold at this entity's volume, in nats")
    wilson_lower: float = Field(description="Lower Wilson bound of the window's negative share")
    z: float = Field(description="Normal z of the window's share against the baseline")
    window_min: int = Field(5, description="The confirmation window that fired (or that the resolution was judged on)")
    window_reason: str = Field("", description="Why that window: the shortest holding enough posts")
    negatives: int = Field(0, description="Negative posts in that window")


class Alert(_Contract):
    """A negative-sentiment spike for one entity, published on the alerts topic and to every sink.

    `alert_id` is the same for the firing and its resolution and across restarts: dedup on
    (`alert_id`, `status`)."""

    alert_id: str
    entity: str
    status: Literal["firing", "resolved"]
    severity: Literal["warning", "critical"]
    window_s: int = Field(description="The confirmation window the test ran on (5-60 min, by volume)")
    starts_at: datetime = Field(description="Estimated start of the spike (the CUSUM change point)")
    ends_at: datetime | None = Field(None, description="When the spike was judged over; null while firing")
    evaluated_at: datetime = Field(description="End of the event-time minute this decision was made in")
    current: ShareAndVolume
    baseline: ShareAndVolume
    statistic: AlertStatistic
    summary: str
    top_negative_posts: list[AlertPost] = Field(default_factory=list)
    terms: list[AlertTerm] = Field(default_factory=list)
    sources: list[SourceShare] = Field(default_factory=list)
    dashboard_url: str | None = None
