"""Logging for the CLI and the worker: plain lines or JSON with ISO-8601 UTC times, and the
Kafka client's expected start-up noise kept below WARNING."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

# (logger name prefix, message pattern, only during start-up). Each is expected on a healthy start:
# a new consumer group has no coordinator for a moment, and Faust's leader topic is never created
# (topics are not auto-declared) so aiokafka and Faust's assignor both mention it.
BENIGN = (
    ("aiokafka.consumer.group_coordinator", re.compile(r"GroupCoordinatorNotAvailable|CoordinatorNotAvailable"), True),
    ("aiokafka.cluster", re.compile(r"Topic \S+__assignor-__leader not found"), False),
    ("faust.assignor", re.compile(r"Ignoring missing topic: '\S+__assignor-__leader'"), False),
    ("aiokafka.consumer.group_coordinator", re.compile(r"Heartbeat failed .* because it is rebalancing"), False),
)
STARTUP_S = 120.0
# Kafka client lines that only say "the broker is (still) unreachable". During a broker outage
# aiokafka writes about a hundred a second (reconnects, metadata, fetch, produce, coordinator).
CONNECTION_NOISE = re.compile(
    r"Unable connect to|Unable to update metadata|Unable to request metadata|NodeNotReadyError"
    r"|KafkaConnectionError|Connect call failed|Marking the coordinator dead|Heartbeat session expired"
    r"|RequestTimedOutError"
)
# Echoes of the same outage: timers that waited on the broker, the group rejoin it forces (the
# member's session expired meanwhile, so heartbeats and offset commits are refused once).
OUTAGE_ECHOES = re.compile(r"is overlapping|member_id was not recognized|Heartbeat failed|UnknownMemberIdError")


def iso_utc(created: float) -> str:
    """`2024-05-01T12:00:00.123Z`: ISO-8601, UTC, milliseconds."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BenignKafkaNoise(logging.Filter):
    """Demotes the known, expected Kafka client messages to INFO (dropped below the root level)."""

    def __init__(self, startup_s: float = STARTUP_S) -> None:
        super().__init__()
        self.until = time.monotonic() + startup_s

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(("aiokafka", "faust")):
            return True
        message = record.getMessage()
        starting = time.monotonic() < self.until
        for prefix, pattern, startup_only in BENIGN:
            if record.name.startswith(prefix) and (starting or not startup_only) and pattern.search(message):
                record.levelno, record.levelname = logging.INFO, "INFO"
                return logging.getLogger().isEnabledFor(logging.INFO)
        return True


class ConnectionNoise(logging.Filter):
    """While a worker listens (`report_connection_errors`), the Kafka client's connection errors
    go to its outage tracker instead of the log: counted as retries, with one warning when Kafka is
    lost and one line when it is back (`stream_app.ingest.health.Outages`). They stay visible at
    DEBUG. Without a listener (the CLI's other commands) they pass through unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.report: Callable[[str], None] | None = None
        self.down: Callable[[], bool] = lambda: False

    def filter(self, record: logging.LogRecord) -> bool:
        report = self.report
        if report is None or record.levelno < logging.WARNING or not record.name.startswith(("aiokafka", "mode")):
            return True
        message = record.getMessage()
        if record.name.startswith("aiokafka") and CONNECTION_NOISE.search(message):
            report(message)
        elif not (OUTAGE_ECHOES.search(message) and self.down()):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


CONNECTION_NOISE_FILTER = ConnectionNoise()


def report_connection_errors(report: Callable[[str], None] | None, down: Callable[[], bool] = lambda: False) -> None:
    """Send the Kafka client's connection errors to `report` instead of the log (None: log them);
    while `down()`, the outage's echoes (overlapping timers, the group rejoin) stay at DEBUG too."""
    CONNECTION_NOISE_FILTER.report = report
    CONNECTION_NOISE_FILTER.down = down


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class IsoJsonFormatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            return iso_utc(record.created)

    return IsoJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    )


def setup_logging(level: str, as_json: bool) -> None:
    """Plain lines for people, or one JSON object per line (`SM_LOG_JSON=true`) for log pipelines."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(_json_formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(BenignKafkaNoise())
    handler.addFilter(CONNECTION_NOISE_FILTER)  # after the benign filter: start-up noise stays INFO
    logging.basicConfig(level=level, handlers=[handler], force=True)
