"""The stream edge's configuration as plain values (the composition root, stream_app/wiring.py,
fills them from Settings; nothing here reads Settings): one Kafka client configuration rendered
for each client library (Faust for the worker, kafka-python for topic admin and the feeder), the
topic plan, and what the worker process needs beyond the Kafka clients."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KafkaClientConfig:
    bootstrap: tuple[str, ...]
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    client_id: str = "sentiment-monitor"

    @classmethod
    def plain(cls, bootstrap: str) -> KafkaClientConfig:
        """A PLAINTEXT broker list (`host:port,host:port`): tests and local launchers."""
        return cls(tuple(s.strip() for s in bootstrap.split(",")))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.bootstrap)

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients (KafkaAdminClient, KafkaProducer)."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            if self.sasl_password:
                options["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options

    def faust_brokers(self) -> list[str]:
        return [f"kafka://{server}" for server in self.bootstrap]

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials`: None for PLAINTEXT, else SASL or SSL credentials."""
        if self.security_protocol == "PLAINTEXT":
            return None
        import faust

        context = None
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password or "",
                mechanism=self.sasl_mechanism or "PLAIN",
                ssl_context=context,
            )
        return faust.SSLCredentials(context)


@dataclass(frozen=True)
class Topics:
    """The topics the service reads and writes, and how `topics create` makes them."""

    posts: str = "social-posts"
    reviews: str = "reviews"
    scored: str = "scored-events"
    dead_letter: str = "dead-letters"
    alerts: str = "sentiment-alerts"
    partitions: int = 4
    replication: int = 1

    @property
    def inputs(self) -> tuple[str, str]:
        return self.posts, self.reviews


@dataclass(frozen=True)
class StreamConfig:
    """What the worker process needs beyond its wiring: the Faust app, its web server, the batch
    loop, its timers, and how it starts and stops."""

    app_id: str
    kafka: KafkaClientConfig
    topics: Topics
    data_dir: Path
    redis_url: str  # a secret: used to connect and, through `redis_address`, to name Redis in log lines
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_allowed_hosts: tuple[str, ...] = ()
    dashboard_url: str | None = None
    web_token: str | None = None
    session_timeout_s: float = 30.0
    group_instance_id: str | None = None
    max_message_bytes: int = 1_048_576
    batch_max_size: int = 64
    batch_max_wait_s: float = 0.05
    alert_tick_s: float = 5.0
    lag_interval_s: float = 5.0
    startup_wait_s: float = 60.0
    shutdown_timeout_s: float = 25.0
    log_level: str = "INFO"
    effective: Mapping[str, object] = field(default_factory=dict)  # the masked settings, for the ready line
    reload_model_dir: Callable[[], Path] | None = None  # SIGHUP: what SM_MODEL_DIR names now
