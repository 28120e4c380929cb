"""One root exception; bad records are data (`DeadLetter`), not exceptions that escape."""

from __future__ import annotations


class SentimentMonitorError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(SentimentMonitorError):
    """Settings failed validation at start-up."""


class InvalidRecord(SentimentMonitorError):
    """A record that cannot be scored. `reason` is a short stable code for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ModelError(SentimentMonitorError):
    """The model directory is missing or malformed."""
