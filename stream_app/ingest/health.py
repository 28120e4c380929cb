"""Are Redis and Kafka reachable? Used at start-up (bounded wait, one clear line) and by /readyz."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from stream_app.errors import DependencyUnavailable

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


class Outages:
    """One warning when a dependency is lost, one line when it is back, and every retry counted.

    Fed by the batch path's retries (`resilience.retry_forever`), by the Kafka client's own
    connection errors (`stream_app.logs.ConnectionNoise` keeps them off the log and reports them
    here) and by the health probe. A dependency is back once the probe reaches it and nothing has
    failed for `settle_s`: a broker whose port opens before it serves keeps failing meanwhile, so
    the pair of lines does not flap. Listeners (the worker's metrics) hear every retry.
    """

    def __init__(self, settle_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_s = settle_s
        self.clock = clock
        self.names: dict[str, str] = {}  # dependency -> how log lines name it ("Kafka at host:port")
        self.down_since: dict[str, float] = {}
        self.last_failure: dict[str, float] = {}
        self.retries: Counter[str] = Counter()  # since the process started
        self.retries_in_outage: Counter[str] = Counter()
        self.listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()  # Faust's consumer thread reports the Kafka client's errors

    def name(self, dependency: str) -> str:
        return self.names.get(dependency, dependency)

    def retried(self, dependency: str, detail: object) -> None:
        """A failed attempt that will be (or was) retried."""
        with self._lock:
            self.retries[dependency] += 1
            self.retries_in_outage[dependency] += 1
            self._lost(dependency, detail)
        for listener in self.listeners:
            listener(dependency)

    def lost(self, dependency: str, detail: object) -> None:
        with self._lock:
            self._lost(dependency, detail)

    def _lost(self, dependency: str, detail: object) -> None:
        now = self.clock()
        self.last_failure[dependency] = now
        if dependency in self.down_since:
            return
        self.down_since[dependency] = now
        log.warning(
            "%s lost: %s; retrying quietly until it is back (sm_dependency_retries_total counts the attempts)",
            self.name(dependency),
            detail,
        )

    def reachable(self, dependency: str) -> None:
        """The probe reached it; it is back once nothing failed for `settle_s`."""
        with self._lock:
            since = self.down_since.get(dependency)
            now = self.clock()
            if since is None or now - self.last_failure.get(dependency, since) < self.settle_s:
                return
            del self.down_since[dependency]
            retries = self.retries_in_outage.pop(dependency, 0)
        log.warning("%s is back after %.0f s (%d retries)", self.name(dependency), now - since, retries)

    def is_down(self, dependency: str) -> bool:
        return dependency in self.down_since


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
