"""One Kafka client configuration, read from Settings once and rendered for each client library:
Faust (the worker) and kafka-python (topic admin, replay and the dev launcher's readiness check)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from stream_app.settings import Settings


@dataclass(frozen=True)
class KafkaClientConfig:
    bootstrap: tuple[str, ...]
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaClientConfig:
        return cls(
            bootstrap=tuple(s.strip() for s in settings.kafka_bootstrap.split(",")),
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        )

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
