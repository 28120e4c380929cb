"""Infrastructure failures block and retry; they never skip a record (docs/design.md, "The rule").

`Retrying` wraps any `Sink`, and `RetryingStore` the store's write side: on an error the policy
calls transient (a connection-level Redis or Kafka error, an `OSError`, a timeout) they wait,
with capped exponential backoff and jitter, and try again for as long as it takes. The stream
stops pulling meanwhile, the consumer lag grows and shows it. Anything else is a bug and passes
through (the worker then exits for a clean redelivery). Which errors are transient, and which
dependency an error came from, is the adapters' knowledge: the composition root (wiring) puts it
in the `RetryPolicy`. `Outages` keeps an outage to one warning and one line when it is over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never, wait_exponential_jitter

from stream_app.pipeline.counts import CountedRecord
from stream_app.pipeline.ports import AggregateWrites, Sink

log = logging.getLogger(__name__)
T = TypeVar("T")
Item = TypeVar("Item")


class Outages:
    """One warning when a dependency is lost, one line when it is back, and every retry counted.

    Fed by the retry loops, by the Kafka client's own connection errors (`stream_app.logs`
    keeps them off the log and reports them here) and by the health probe. A dependency is back
    once the probe reaches it and nothing has failed for `settle_s`: a broker whose port opens
    before it serves keeps failing meanwhile, so the pair of lines does not flap. Listeners (the
    worker's metrics) hear every retry.
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


class RetryReporter(Protocol):
    def retried(self, dependency: str, detail: object) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Which errors are transient, whose they are, how long to wait at most, and who hears."""

    transient: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    dependency_of: Callable[[BaseException], str | None] = lambda exc: None
    max_wait_s: float = 5.0
    reporter: RetryReporter | None = None
    on_retry: Callable[[str | None], None] = field(default=lambda dependency: None)


async def retry_forever(what: str, call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Await `call()` until it succeeds; transient errors are retried with backoff. With a
    reporter, retries go there (one warning per outage, every retry counted); without, each is
    logged. Cancellation (shutdown) passes straight through, so nothing after the call runs."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        dependency = policy.dependency_of(error) if error is not None else None
        policy.on_retry(dependency)
        if policy.reporter is None or dependency is None:
            log.warning("%s failed (attempt %d), retrying: %r", what, state.attempt_number, error)
            return
        log.debug("%s failed (attempt %d), retrying: %r", what, state.attempt_number, error)
        policy.reporter.retried(dependency, f"{what} failed: {error!r}")

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(policy.transient),
        wait=wait_exponential_jitter(initial=0.2, max=policy.max_wait_s),
        stop=stop_never,
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stop_never")


class Retrying(Generic[Item]):
    """A `Sink` whose writes block and retry while its output is unreachable. A retried write may
    duplicate records in an at-least-once output (a topic); it never loses one."""

    def __init__(self, inner: Sink[Item], what: str, policy: RetryPolicy) -> None:
        self.inner, self.what, self.policy = inner, what, policy

    async def start(self) -> None:
        await retry_forever(f"{self.what} start", self.inner.start, self.policy)

    async def write(self, batch: Sequence[Item]) -> None:
        await retry_forever(self.what, lambda: self.inner.write(batch), self.policy)

    async def flush(self) -> None:
        await self.inner.flush()

    async def stop(self) -> None:
        await self.inner.stop()


class RetryingStore(Retrying[CountedRecord]):
    """The store's write side (`AggregateWrites`), every call retried the same way."""

    inner: AggregateWrites

    def __init__(self, inner: AggregateWrites, policy: RetryPolicy) -> None:
        super().__init__(inner, "redis batch write", policy)

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        return await retry_forever(self.what, lambda: self.inner.apply(records), self.policy)

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await retry_forever("redis offset read", lambda: self.inner.applied_offsets(partitions), self.policy)

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await retry_forever("redis fence read", lambda: self.inner.resume_offsets(partitions), self.policy)
