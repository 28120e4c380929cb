"""The worker process's last resort, and what the Kafka client's transient errors are.

Retrying belongs to the core (`stream_app.pipeline.resilience`); here is what only the stream
edge knows. Anything that escapes the batch loop is a bug: `exit_worker` ends the process with a
non-zero status, so the supervisor restarts it and Kafka redelivers from the last committed
offset (or the store's fences), rather than Faust restarting the agent in-process and dropping
the batches it had taken. A stop that hangs on a dead dependency is cut short by the watchdog.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

KAFKA_TRANSIENT: tuple[type[BaseException], ...] = (KafkaError,)
EXIT_AGENT_CRASHED = 70  # EX_SOFTWARE


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
