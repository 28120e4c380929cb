"""Infrastructure failures block and retry; they never skip a record (docs/design.md, "The rule").

`RetryingSink` and `RetryingPublisher` wrap the batch path's Redis and Kafka calls: on a
connection-level error they wait (exponential backoff with jitter, capped) and try again, for
as long as it takes. The agent stops pulling from Kafka meanwhile, so the consumer lag grows and
shows it. Anything else that escapes the agent is a bug: `exit_worker` ends the process with a
non-zero status, so the supervisor restarts it and Kafka redelivers from the last commit, rather
than Faust restarting the agent in-process and dropping the batches it had taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never, wait_exponential_jitter

from schemas.models import DeadLetter, ScoredEvent
from stream_app.ingest.health import OUTAGES, Outages
from stream_app.pipeline.counts import CountedRecord
from stream_app.pipeline.ports import AggregateWrites
from stream_app.pipeline.process import Publisher

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connection-level failures of Redis (BusyLoadingError, an AOF replay, is a ConnectionError) and Kafka.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    KafkaError,
    OSError,
    asyncio.TimeoutError,
)
EXIT_AGENT_CRASHED = 70  # EX_SOFTWARE


def dependency_of(exc: BaseException) -> str | None:
    """Which dependency an infrastructure error came from, where the type says so."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    if isinstance(exc, KafkaError):
        return "kafka"
    return None


async def retry_forever(
    what: str,
    call: Callable[[], Awaitable[T]],
    on_retry: Callable[[], None] | None = None,
    max_wait_s: float = 5.0,
    dependency: str | None = None,
    outages: Outages = OUTAGES,
) -> T:
    """Await `call()` until it succeeds; infrastructure errors are retried with backoff.
    With a `dependency` the retries go to `outages` (one warning per outage, every retry counted);
    without, each is logged. Cancellation (shutdown) passes straight through, so nothing after
    the call runs."""

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry()
        error = state.outcome.exception() if state.outcome else None
        if dependency is None:
            log.warning("%s failed (attempt %d), retrying: %r", what, state.attempt_number, error)
            return
        log.debug("%s failed (attempt %d), retrying: %r", what, state.attempt_number, error)
        outages.retried(dependency, f"{what} failed: {error!r}")

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(INFRA_ERRORS),
        wait=wait_exponential_jitter(initial=0.2, max=max_wait_s),
        stop=stop_never,
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: stop_never")


class RetryingSink:
    """The store's write side, whose reads and writes block and retry while Redis is unreachable."""

    def __init__(self, inner: AggregateWrites, on_retry: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.on_retry = on_retry

    async def apply(self, records: Sequence[CountedRecord]) -> int:
        return await retry_forever(
            "redis batch write", lambda: self.inner.apply(records), self.on_retry, dependency="redis"
        )

    async def applied_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await retry_forever(
            "redis offset read", lambda: self.inner.applied_offsets(partitions), self.on_retry, dependency="redis"
        )

    async def resume_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await retry_forever("redis fence read", lambda: self.inner.resume_offsets(partitions), self.on_retry)


class RetryingPublisher:
    """A `Publisher` that sends the whole batch again until the broker acknowledged it
    (the output topics are at least once: a resend may duplicate, never lose)."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner

    async def publish(self, scored: Sequence[ScoredEvent], dead: Sequence[DeadLetter]) -> None:
        await retry_forever("kafka publish", lambda: self.inner.publish(scored, dead), dependency="kafka")


def exit_worker(exc: BaseException, code: int = EXIT_AGENT_CRASHED) -> None:
    """End the whole process now, committing nothing more: the supervisor restarts it and
    Kafka redelivers everything after the last committed offset."""
    log.critical("stream agent crashed; exiting with status %d so Kafka redelivers: %r", code, exc, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)


EXIT_STOP_TIMED_OUT = 75  # EX_TEMPFAIL


def arm_exit_watchdog(timeout_s: float, code: int = EXIT_STOP_TIMED_OUT) -> threading.Timer:
    """Once a stop was asked for: if the process still runs after `timeout_s` (Faust waiting on a
    Redis or Kafka that is down), exit at once. Offsets are only committed for records whose
    batch was fully written, so an abrupt exit here commits nothing unwritten."""

    def expire() -> None:
        log.error("shutdown did not finish within %.0f s; exiting now with status %d", timeout_s, code)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(code)

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()
    return timer
