"""Are Redis and Kafka reachable? Used at start-up (bounded wait, one clear line) and by /readyz."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from stream_app.errors import DependencyUnavailable
from stream_app.pipeline.resilience import Outages

__all__ = [
    "OUTAGES",
    "DependencyHealth",
    "DependencyUnavailable",
    "Outages",
    "redis_address",
    "redis_ok",
    "tcp_ok",
]

log = logging.getLogger(__name__)


async def redis_ok(client: Any, timeout_s: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s))
    except Exception:  # any failure means "not ready"
        return False


async def tcp_ok(servers: str, timeout_s: float = 2.0) -> bool:
    """True when at least one `host:port` of a comma-separated list accepts a connection."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
        except (TimeoutError, OSError, ValueError):
            continue
        writer.close()
        return True
    return False


def redis_address(url: str) -> str:
    """host:port of a Redis URL, without the password, for log lines."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path


OUTAGES = Outages()  # one worker per process: the log filter and the retry loops report here


@dataclass
class DependencyHealth:
    """The latest probe of both dependencies, refreshed by `probe()` on a timer."""

    redis: Any  # a redis.asyncio client, single node or cluster
    kafka_bootstrap: str
    redis_up: bool = False
    kafka_up: bool = False
    checked_at: float = field(default=0.0)
    outages: Outages | None = None  # the worker's timer reports to OUTAGES; start-up waits do not
    on_probe: Callable[[str, bool], None] | None = None

    async def probe(self) -> tuple[bool, bool]:
        self.redis_up, self.kafka_up = await asyncio.gather(redis_ok(self.redis), tcp_ok(self.kafka_bootstrap))
        self.checked_at = time.monotonic()
        for dependency, up in (("redis", self.redis_up), ("kafka", self.kafka_up)):
            if self.on_probe is not None:
                self.on_probe(dependency, up)
            if self.outages is not None:
                if up:
                    self.outages.reachable(dependency)
                else:
                    self.outages.lost(dependency, "the health probe cannot reach it")
        return self.redis_up, self.kafka_up

    async def probe_redis(self) -> bool:
        self.redis_up = await redis_ok(self.redis)
        return self.redis_up

    def status(self) -> dict[str, bool]:
        return {"redis": self.redis_up, "kafka": self.kafka_up}

    async def wait_until_reachable(self, timeout_s: float, redis_label: str) -> None:
        """Probe with backoff until both answer; after `timeout_s` raise one readable error."""
        deadline = time.monotonic() + timeout_s
        delay = 0.5
        while True:
            redis_up, kafka_up = await self.probe()
            if redis_up and kafka_up:
                return
            down = [
                (name, setting)
                for name, setting, up in (
                    ("Redis at " + redis_label, "SM_REDIS_URL", redis_up),
                    ("Kafka at " + self.kafka_bootstrap, "SM_KAFKA_BOOTSTRAP", kafka_up),
                )
                if not up
            ]
            missing = [name for name, _ in down]
            if time.monotonic() + delay > deadline:
                raise DependencyUnavailable(
                    f"{' and '.join(missing)} unreachable after {timeout_s:.0f} s",
                    setting=" and ".join(setting for _, setting in down),
                    hint=f"start {'them' if len(down) > 1 else 'it'} or fix the address; "
                    "SM_STARTUP_WAIT_S sets how long start-up waits",
                )
            log.warning("waiting for %s (start-up wait %.0f s)", " and ".join(missing), timeout_s)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
