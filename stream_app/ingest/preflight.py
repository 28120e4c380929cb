"""Fail fast on bad Kafka credentials or an untrusted broker certificate.

Kafka clients treat both as "broker unavailable" and retry for good (Faust) or time out after
half a minute with no cause (kafka-python). Before a worker, `topics create` or `replay`
starts, one connection to each bootstrap server tells the two apart from an outage and turns
them into a `ConfigError` naming the setting (the CLI prints one line and exits 2). The message
never holds the password. An unreachable broker is not a config error: it is left to the
clients' own retries.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from stream_app.errors import ConfigError
from stream_app.ingest.kafka_config import KafkaClientConfig

log = logging.getLogger(__name__)


def kafka_ssl_context(kafka: KafkaClientConfig) -> ssl.SSLContext | None:
    """The TLS context every Kafka client of the service uses: system CAs, or SM_KAFKA_SSL_CAFILE."""
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = Path(kafka.ssl_cafile) if kafka.ssl_cafile else None
    if cafile is not None and not cafile.is_file():
        raise ConfigError(f"SM_KAFKA_SSL_CAFILE: no such file: {cafile}")
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except ssl.SSLError as exc:
        raise ConfigError(f"SM_KAFKA_SSL_CAFILE: not a PEM CA bundle: {cafile} ({exc.reason})") from None


async def _probe(kafka: KafkaClientConfig, host: str, port: int) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

    sasl = kafka.security_protocol.startswith("SASL")
    try:
        conn = await create_conn(
            host,
            port,
            client_id=f"{kafka.client_id}-preflight",
            request_timeout_ms=10_000,
            ssl_context=kafka_ssl_context(kafka),
            security_protocol=kafka.security_protocol,
            sasl_mechanism=(kafka.sasl_mechanism or "PLAIN") if sasl else None,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    except ssl.SSLCertVerificationError as exc:
        where = "SM_KAFKA_SSL_CAFILE" if kafka.ssl_cafile else "SM_KAFKA_SSL_CAFILE (unset: system CAs)"
        raise ConfigError(f"{where}: broker {host}:{port} certificate not trusted: {exc.verify_message}") from None
    except SaslAuthenticationFailed:
        raise ConfigError(
            f"SM_KAFKA_SASL_USERNAME/SM_KAFKA_SASL_PASSWORD: broker {host}:{port} refused user "
            f"{kafka.sasl_username!r} ({kafka.sasl_mechanism or 'PLAIN'})"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(f"SM_KAFKA_SECURITY_PROTOCOL: TLS with {host}:{port} failed ({exc.reason})") from None
    except (OSError, TimeoutError, KafkaConnectionError) as exc:
        log.warning("Kafka preflight: %s:%s not reachable (%s); the clients will retry", host, port, type(exc).__name__)
        return
    conn.close()


def check_kafka_access(kafka: KafkaClientConfig) -> None:
    """Raise `ConfigError` when the broker refuses these credentials or its certificate.
    PLAINTEXT has neither, so there is nothing to check."""
    if kafka.security_protocol == "PLAINTEXT":
        return
    if kafka.security_protocol.startswith("SASL") and not kafka.sasl_username:
        raise ConfigError("SM_KAFKA_SASL_USERNAME: required with SM_KAFKA_SECURITY_PROTOCOL=SASL_*")

    async def probe_all() -> None:
        for server in kafka.bootstrap:
            host, _, port = server.strip().rpartition(":")
            await _probe(kafka, host.strip("[]"), int(port))

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the loop Faust later asks for
    try:
        loop.run_until_complete(probe_all())
    finally:
        loop.close()
