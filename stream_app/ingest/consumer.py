"""Faust's aiokafka consumer with a bounded fetch long-poll (the latency floor, docs/serving.md).

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500`, hard-coded. aiokafka keeps one
fetch in flight per broker, and leaves out of a fetch every partition whose earlier records the
stream has not taken yet. When the worker takes more than aiokafka's prefetch backoff (0.1 s) to
take them, the next fetch asks for the other partitions only: at the least the idle `reviews`
partitions. The broker parks a fetch with no data for up to `fetch_max_wait_ms`, and the busy
partitions' new records wait behind it: a 1.5 s floor, decided by a race between the event loop
and the fetcher. `FETCH_MAX_WAIT_MS` bounds that wait; fetches that find data return at once
whatever the setting, so it costs only idle polls (ten a second per broker at 100 ms).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class BoundedFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms = FETCH_MAX_WAIT_MS

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # The constructor stores it and `start()` hands it to the fetcher; nothing has read it yet.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class BoundedFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> BoundedFetchConsumerThread:
        return BoundedFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


# mode gives each Service subclass a logger named after its module; keep Faust's, so log lines (and
# the filters in stream_app.logs) read as before.
BoundedFetchConsumerThread.logger = faust_aiokafka.AIOKafkaConsumerThread.logger
BoundedFetchConsumer.logger = faust_aiokafka.Consumer.logger


def bound_fetch_wait(app: faust.App) -> None:
    """Make `app`'s stream consumer (created later, on start) a `BoundedFetchConsumer`."""
    transport = app.transport
    if not isinstance(transport, faust_aiokafka.Transport):
        raise TypeError(f"expected Faust's aiokafka transport, got {type(transport).__name__}")
    transport.Consumer = BoundedFetchConsumer  # type: ignore[misc]  # a class attribute, set for this app only
