"""Logging for the CLI and the worker: plain lines or JSON with ISO-8601 UTC times, and the
Kafka client's expected start-up noise kept below WARNING."""

from __future__ import annotations

import logging
import re
import sys
import time
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
    logging.basicConfig(level=level, handlers=[handler], force=True)
