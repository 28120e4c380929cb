"""The one configuration object. Built in `main()`, never at import time.

Every field can be set as `SM_<NAME>` in the environment or a `.env` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.resources import default_model_dir

DEFAULT_MODEL_DIR = default_model_dir()  # the checkout's models/default, or the wheel's copy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SM_", env_file=".env", extra="ignore", frozen=True)

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_session_timeout_s: float = Field(10.0, ge=6, description="A crashed worker's partitions move after this")
    kafka_group_instance_id: str | None = Field(
        None, description="Static membership: a unique, stable id per worker; a restart within the session keeps it"
    )
    kafka_max_message_bytes: int = Field(
        1_048_576, ge=65_536, description="Producer max request size; at most the broker's message.max.bytes"
    )
    app_id: str = Field("sentiment-monitor", description="Faust app id (consumer group)")
    topic_posts: str = "social-posts"
    topic_reviews: str = "reviews"
    topic_scored: str = "scored-events"
    topic_dead_letter: str = "dead-letters"
    topic_alerts: str = "sentiment-alerts"
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)

    # Redis
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="redis:// or rediss:// (TLS) URL, or redis+cluster:// / rediss+cluster:// for a Redis Cluster "
        "(any node); may hold a password",
    )
    redis_prefix: str = Field("sm", pattern=r"^[A-Za-z0-9_.-]+$", description="Key prefix in Redis")
    redis_retention_s: int = Field(
        7 * 86400, ge=2 * 86400, description="How long hour roll-ups (and so windows and series) are kept"
    )
    redis_minute_retention_s: int = Field(
        2 * 86400, ge=86400 + 3600, description="How long minute buckets are kept (minute series, window edges)"
    )
    redis_shards: int = Field(
        16, ge=1, le=1024, description="Virtual store shards (hash slots the aggregates spread over); fixed per store"
    )

    # Entities and windows
    watchlist: Path | None = Field(None, description="YAML watch-list of brands and tickers with aliases")
    allowed_lateness_s: float = Field(300, ge=0, description="Older events (vs the partition's newest) count as late")
    max_dynamic_entities: int = Field(1000, ge=0, description="Bound on tracked non-watch-list entities")
    entity_min_mentions: int = Field(3, ge=1, description="Mentions before a non-watch-list entity is tracked")

    # Alerting (docs/alerting.md); per-entity overrides go under `alerts:` in the watch-list
    alerts_enabled: bool = True
    alert_short_window_min: int = Field(5, ge=1, le=60)
    alert_min_volume: int = Field(20, ge=1, description="Posts the confirmation window must hold (it grows to)")
    alert_confirm_windows_min: tuple[int, ...] = Field(
        (5, 15, 30, 60), description="Confirmation windows, shortest first: the first with enough posts is judged"
    )
    alert_min_negatives: int = Field(6, ge=1, description="Negative posts the confirmation window must hold")
    alert_min_abs_increase: float = Field(0.05, gt=0, lt=1, description="Window share minus baseline, at least")
    alert_spike_ratio: float = Field(2.0, gt=1, description="The spike size the CUSUM is tuned for")
    alert_cusum_threshold: float = Field(6.5, gt=0, description="Evidence (nats) needed at the reference volume")
    alert_threshold_volume_slope: float = Field(1.25, ge=0, description="Nats added per e-fold of posts an hour")
    alert_label_floor: float | None = Field(
        None, ge=0, lt=1, description="Share of non-negative posts the model labels negative; unset: the model's own"
    )
    alert_confirm_min: int = Field(3, ge=1, description="Minutes in a row the evidence must stay above it")
    alert_resolve_abs_increase: float = Field(0.03, ge=0, description="Resolve when the share falls to this")
    alert_cooldown_min: int = Field(30, ge=0)
    alert_baseline_half_life_min: float = Field(180, gt=0)
    alert_min_baseline_posts: float = Field(150, ge=0, description="Baseline posts (decayed) before alerting")
    alert_critical_ratio: float = Field(2.5, gt=1, description="Critical at this x baseline (lower bound 2x)")
    lag_interval_s: float = Field(5.0, gt=0, description="How often consumer lag is measured (a broker round trip)")
    alert_tick_s: float = Field(5.0, gt=0, description="How often the detector steps through closed minutes")
    alert_settle_s: float = Field(60.0, ge=0, description="A minute is closed this long after the watermark passes")
    alert_idle_s: float = Field(60.0, gt=0, description="A partition with no writes this long is idle")
    alert_leader_ttl_s: float = Field(15.0, ge=1, description="Detector leadership lease (one detector per app)")
    alert_history_min: int = Field(1440, ge=60, description="How far back a new entity's baseline is read")
    alert_webhook_url: SecretStr | None = Field(None, description="Slack-compatible incoming webhook")
    alertmanager_url: str | None = Field(None, description="Alertmanager base URL, e.g. http://127.0.0.1:9093")
    alert_sink_timeout_s: float = Field(5.0, gt=0)
    alert_sink_attempts: int = Field(4, ge=1)
    dashboard_url: str | None = Field(None, description="Public dashboard base; default: this worker's /dashboard")

    # Model and batching
    model_dir: Path = DEFAULT_MODEL_DIR
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    intra_op_threads: int = Field(0, ge=0, description="0 lets onnxruntime decide")
    ort_spin: bool = Field(False, description="Let idle onnxruntime threads spin (faster alone, greedier when shared)")
    max_length: int = Field(128, ge=8, le=512)
    long_text: Literal["head", "head_tail", "chunks"] = Field(
        "head_tail", description="How texts over max_length tokens are read (see stream_app/engine/tokenize.py)"
    )
    batch_max_size: int = Field(64, ge=1)
    batch_max_wait_s: float = Field(0.05, gt=0)
    max_text_chars: int = Field(10_000, ge=1, description="Longer texts are dead-lettered")
    max_payload_bytes: int = Field(1_000_000, ge=1024, description="Larger records are dead-lettered")
    dead_letter_max_original_bytes: int = Field(
        65_536, ge=0, description="Bytes of the original embedded in a dead letter (length and SHA-256 always are)"
    )
    event_max_future_s: float = Field(300.0, ge=0, description="Later event times are dead-lettered (clock skew)")
    event_max_age_s: float = Field(7 * 86400.0, ge=0, description="Older event times are dead-lettered; 0: no limit")
    inference_queue_depth: int = Field(4, ge=1)

    # Worker (metrics, health, model swap) and the API process (`sentiment-monitor api`: queries, page)
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    api_host: str = "127.0.0.1"
    api_port: int = Field(6067, ge=1, le=65535)
    web_token: SecretStr | None = Field(None, description="Bearer token for every page but probes and static files")
    web_allowed_hosts: str = Field(
        "", description="Extra Host names the web server answers, comma separated ('*': any); loopback always"
    )
    data_dir: Path = Path("./.sm-data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    startup_wait_s: float = Field(60.0, ge=0, description="How long start-up waits for Redis and Kafka")
    shutdown_timeout_s: float = Field(25.0, gt=0, description="A stop that takes longer exits at once (status 75)")

    @field_validator("watchlist", "kafka_ssl_cafile", "alert_webhook_url", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if not value.get_secret_value().startswith(schemes):
            raise ValueError("must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://")
        return value

    @model_validator(mode="after")
    def _sizes_fit_the_broker(self) -> Settings:
        """A record we accept and its dead letter (base64 is 4/3, plus a small envelope) must both
        fit in one Kafka message, or publishing them would fail."""
        if self.max_payload_bytes > self.kafka_max_message_bytes:
            raise ValueError("max_payload_bytes must not exceed kafka_max_message_bytes")
        if self.dead_letter_max_original_bytes * 4 // 3 + 16_384 > self.kafka_max_message_bytes:
            raise ValueError("dead_letter_max_original_bytes is too large for kafka_max_message_bytes")
        return self

    def masked(self) -> dict[str, object]:
        """The effective config for start-up logs: secrets print as '**********'."""
        return {k: (str(v) if isinstance(v, SecretStr | Path) else v) for k, v in self}


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings, turning pydantic's error into one readable message."""
    from pydantic import ValidationError

    from stream_app.errors import ConfigError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"SM_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        raise ConfigError(
            f"invalid settings: {problems}",
            setting="in the environment or .env",
            hint="fix or unset the variable (`sentiment-monitor check` validates them all)",
        ) from exc
