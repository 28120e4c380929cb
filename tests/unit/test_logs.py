"""Log output: ISO-8601 UTC times in JSON logs, the Kafka client's start-up noise below WARNING,
and the quantizer's per-node lines dropped."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest

from stream_app.engine.precision import quiet_quantizer
from stream_app.logs import BenignKafkaNoise, iso_utc, setup_logging

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    yield
    setup_logging("INFO", as_json=False)


def test_iso_utc() -> None:
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


def test_json_log_times_are_iso_8601_utc(capsys, restore_logging) -> None:  # type: ignore[no-untyped-def]
    setup_logging("INFO", as_json=True)
    before = datetime.now(UTC)
    logging.getLogger("stream_app.test").info("hello")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert ISO_UTC.match(record["ts"]), record["ts"]
    logged = datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
    assert abs((logged - before).total_seconds()) < 5 and record["message"] == "hello"


def test_expected_kafka_startup_errors_go_below_warning(capsys, restore_logging) -> None:  # type: ignore[no-untyped-def]
    setup_logging("INFO", as_json=False)
    logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "app-__assignor-__leader")
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError"
    )
    logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "social-posts")
    lines = capsys.readouterr().err.strip().splitlines()
    assert " INFO aiokafka.cluster: Topic app-__assignor-__leader" in lines[0]
    assert " INFO aiokafka.consumer.group_coordinator" in lines[1]
    assert " ERROR aiokafka.cluster: Topic social-posts" in lines[2]  # a real missing topic stays an error


def test_demoted_noise_is_dropped_at_warning_level(capsys, restore_logging) -> None:  # type: ignore[no-untyped-def]
    setup_logging("WARNING", as_json=False)
    logging.getLogger("aiokafka.cluster").error("Topic %s not found in cluster metadata", "x-__assignor-__leader")
    assert capsys.readouterr().err == ""


def test_coordinator_errors_after_startup_stay_errors() -> None:
    noise = BenignKafkaNoise(startup_s=0)
    record = logging.LogRecord(
        "aiokafka.consumer.group_coordinator", logging.ERROR, __file__, 1, "%s", ("CoordinatorNotAvailable",), None
    )
    assert noise.filter(record) and record.levelno == logging.ERROR


def test_quantizer_root_logger_lines_are_dropped(capsys, restore_logging) -> None:  # type: ignore[no-untyped-def]
    setup_logging("INFO", as_json=False)
    with quiet_quantizer():
        logging.info("Quantization parameters for tensor x")  # what onnxruntime's quantizer does, per node
        logging.getLogger("stream_app.engine.precision").info("ours")
        logging.warning("a real warning")
    err = capsys.readouterr().err
    assert "Quantization parameters" not in err and "ours" in err and "a real warning" in err
