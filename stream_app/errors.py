"""One root exception; bad records are data (`DeadLetter`), not exceptions that escape.

A start-up problem carries where it comes from (`setting`: an `SM_*` variable or a file) and
what to do (`hint`), so the CLI can print it as one line:
`error: <what>, <which setting or file>, <what to do>`.
"""

from __future__ import annotations


class SentimentMonitorError(Exception):
    """Root of every error this project raises on purpose."""

    def __init__(self, message: str, *, setting: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting
        self.hint = hint

    def one_line(self) -> str:
        """`<what>, <which setting or file>, <what to do>`, newlines folded into spaces."""
        parts = [str(self), self.setting, self.hint]
        return ", ".join(" ".join(p.split()) for p in parts if p)


class ConfigError(SentimentMonitorError):
    """Settings, the model directory or the watch-list failed validation at start-up."""


class WatchListError(ConfigError):
    """The watch-list file (SM_WATCHLIST) is missing, not YAML, or not shaped as documented."""


class InvalidRecord(SentimentMonitorError):
    """A record that cannot be scored. `reason` is a short stable code for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ModelError(SentimentMonitorError):
    """The model directory is missing or malformed."""


class DependencyUnavailable(SentimentMonitorError):
    """Redis or Kafka did not answer within the start-up wait (or a command's short timeout)."""


class StoreRegressed(SentimentMonitorError):
    """The aggregate store holds less than this worker wrote: a fence moved backwards, so Redis
    lost acknowledged writes (failover to a lagging replica, an older snapshot, an `everysec`
    crash). The worker exits; on restart every partition resumes from the store's fences, and
    the records the store lost are read from Kafka again (docs/design.md)."""


class StoreMismatch(ConfigError):
    """The store was written with another layout (shard count) than this process uses."""


class BadQuery(SentimentMonitorError):
    """A read that cannot be answered as asked (a window longer than the retention, a resolution
    the store no longer keeps). The API answers 400 with the message."""
