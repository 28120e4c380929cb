"""Issue 24: the bounded fetch wait, the record -> aggregate latency metric, and quiet outages
(one warning when a dependency is lost, one line when it is back, every retry counted)."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from exporters.prometheus.metrics import PipelineMetrics
from stream_app.logs import ConnectionNoise, report_connection_errors, setup_logging
from stream_app.pipeline.resilience import Outages, RetryPolicy, retry_forever
from stream_app.wiring import dependency_of, retry_policy, stream_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _value(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_the_worker_consumer_long_polls_at_most_100_ms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Faust hard-codes fetch_max_wait_ms=1500; a fetch for idle partitions then holds up the
    busy ones for 1.5 s (docs/serving.md, the latency floor)."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from stream_app.ingest.app import faust_app
    from stream_app.ingest.consumer import FETCH_MAX_WAIT_MS, BoundedFetchConsumer, BoundedFetchConsumerThread
    from stream_app.settings import load_settings

    app = faust_app(stream_config(load_settings(data_dir=tmp_path)))
    assert app.transport.Consumer is BoundedFetchConsumer
    consumer = app.consumer
    assert isinstance(consumer, BoundedFetchConsumer)
    thread = consumer._thread
    assert isinstance(thread, BoundedFetchConsumerThread)
    client = thread._create_worker_consumer(app.transport)
    assert client._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    # Faust's own constructor still passes 1500 (so this override is what bounds it), and its
    # log lines keep Faust's logger name.
    source = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer.__code__
    assert 1500 in source.co_consts
    assert BoundedFetchConsumer.logger.name == "faust.transport.drivers.aiokafka"


def test_record_to_aggregate_latency_is_observed_per_record() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    metrics.records_aggregated([0.04, 0.2, -0.01])  # a producer clock ahead of ours counts as 0
    assert _value(metrics, "sm_record_to_aggregate_seconds_count") == 3
    assert _value(metrics, "sm_record_to_aggregate_seconds_bucket", le="0.05") == 2
    assert _value(metrics, "sm_dependency_retries_total", dependency="kafka") == 0  # exported from the start


def test_an_outage_logs_one_warning_and_one_line_when_back(caplog) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    metrics = PipelineMetrics(CollectorRegistry())
    outages = Outages(settle_s=3.0, clock=clock)
    outages.names["kafka"] = "Kafka at k:9092"
    outages.listeners.append(metrics.dependency_retried)
    with caplog.at_level(logging.DEBUG, logger="stream_app.ingest.health"):
        for _ in range(500):
            outages.retried("kafka", "Unable connect to node with id 1")
            clock.now += 0.01
        outages.lost("kafka", "the health probe cannot reach it")
        outages.reachable("kafka")  # too soon after the last failure: not back yet
        clock.now += 4.0
        outages.reachable("kafka")
        outages.reachable("kafka")
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == [
        "Kafka at k:9092 lost: Unable connect to node with id 1; retrying quietly until it is back "
        "(sm_dependency_retries_total counts the attempts)",
        "Kafka at k:9092 is back after 9 s (500 retries)",
    ]
    assert _value(metrics, "sm_dependency_retries_total", dependency="kafka") == 500
    assert not outages.is_down("kafka") and outages.retries["kafka"] == 500


def test_kafka_client_connection_errors_are_counted_not_logged(capsys) -> None:  # type: ignore[no-untyped-def]
    reported: list[str] = []
    setup_logging("INFO", as_json=False)
    try:
        report_connection_errors(reported.append, lambda: True)
        for _ in range(90):
            logging.getLogger("aiokafka").error("Unable connect to node with id 1: [Errno 111] Connect call failed")
        logging.getLogger("aiokafka.consumer.fetcher").error("Failed fetch messages from 1: NodeNotReadyError: x")
        logging.getLogger("mode.timers").warning("Timer commit is overlapping (interval=1.0 runtime=55.0)")
        logging.getLogger("aiokafka.consumer.group_coordinator").error(
            "OffsetCommit failed for group g due to group error ([Error 25] UnknownMemberIdError: g), will rejoin"
        )
        logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "social-posts")
        logging.getLogger("stream_app.x").error("Unable connect to node: our own line stays")
    finally:
        report_connection_errors(None)
        setup_logging("INFO", as_json=False)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(reported) == 91  # the overlapping timer and the refused commit are echoes: quiet, not retries
    assert len(lines) == 2 and "social-posts" in lines[0] and "our own line stays" in lines[1]


def test_without_a_listener_the_kafka_client_lines_pass() -> None:
    record = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "Unable connect to node", None, None)
    assert ConnectionNoise().filter(record) and record.levelno == logging.ERROR


async def test_batch_retries_report_to_the_outage_tracker(caplog) -> None:  # type: ignore[no-untyped-def]
    outages = Outages()
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise RedisConnectionError("down")
        return 7

    policy = RetryPolicy(retry_policy().transient, dependency_of, max_wait_s=0.01, reporter=outages)
    with caplog.at_level(logging.DEBUG):
        assert await retry_forever("redis batch write", flaky, policy) == 7
    assert outages.retries["redis"] == 3 and outages.is_down("redis")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("redis lost: redis batch write failed")


@pytest.mark.parametrize(
    ("error", "dependency"),
    [(RedisConnectionError("x"), "redis"), (KafkaConnectionError(), "kafka"), (OSError(), None)],
)
def test_dependency_of(error: BaseException, dependency: str | None) -> None:
    assert dependency_of(error) == dependency


async def test_topic_sinks_send_through_the_producer_and_wait_for_every_ack() -> None:
    import asyncio

    from stream_app.ingest.publishers import dead_letter_sink, scored_sink
    from stream_app.pipeline.process import RawRecord
    from stream_app.testing.fakes import ListPublisher, make_processor

    sent: list[tuple[str, bytes]] = []
    acks: list[asyncio.Future[None]] = []

    class Producer:
        async def send(self, topic: str, key: bytes, value: bytes, *rest: object) -> asyncio.Future[None]:
            sent.append((topic, key))
            acks.append(asyncio.get_running_loop().create_future())
            return acks[-1]

    class App:
        async def maybe_start_producer(self) -> Producer:
            return Producer()

    class Topic:
        app = App()

        def __init__(self, name: str) -> None:
            self.name = name

        def get_topic_name(self) -> str:
            return self.name

    captured = ListPublisher()
    processor = make_processor(captured, kinds={"posts": "post"})
    post = b'{"id": "p1", "text": "good", "created_at": "2026-01-01T00:00:00Z", "platform": "x"}'
    await processor.process([RawRecord("posts", 0, 7, post, 0.0), RawRecord("posts", 0, 8, b"{", 0.0)])
    metrics = PipelineMetrics(CollectorRegistry())
    scored = asyncio.ensure_future(scored_sink(Topic("scored"), metrics).write(captured.scored))
    dead = asyncio.ensure_future(dead_letter_sink(Topic("dead"), metrics).write(captured.dead))
    await asyncio.sleep(0.01)
    assert sent == [("scored", b"p1"), ("dead", b"posts:0:8")]
    assert not scored.done() and not dead.done()  # each write waits for its acks
    for ack in acks:
        ack.set_result(None)
    await asyncio.gather(scored, dead)
    assert _value(metrics, "sm_messages_out_total", topic="scored") == 1
    assert _value(metrics, "sm_messages_out_total", topic="dead") == 1
