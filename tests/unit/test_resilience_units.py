"""Unit tests for issue 13's fixes: event-time bounds, the detector clock, dead-letter size, infra retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from stream_app.alerting.service import closed_minute
from stream_app.errors import InvalidRecord
from stream_app.pipeline.resilience import RetryingStore, RetryPolicy, retry_forever
from stream_app.pipeline.timebounds import EventTimeBounds
from stream_app.pipeline.validate import make_dead_letter
from stream_app.settings import load_settings
from stream_app.wiring import retry_policy

NOW = 1_790_000_000.0


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@pytest.mark.parametrize(
    ("offset_s", "reason"),
    [(0, None), (299, None), (-6 * 86400, None), (301, "future_timestamp"), (-8 * 86400, "ancient_timestamp")],
)
def test_event_time_bounds(offset_s: float, reason: str | None) -> None:
    bounds = EventTimeBounds(max_future_s=300, max_age_s=7 * 86400)
    if reason is None:
        bounds.check(at(NOW + offset_s), NOW)
        return
    with pytest.raises(InvalidRecord) as caught:
        bounds.check(at(NOW + offset_s), NOW)
    assert caught.value.reason == reason


def test_year_9999_is_a_future_timestamp_and_age_zero_means_no_lower_bound() -> None:
    with pytest.raises(InvalidRecord, match="ahead"):
        EventTimeBounds().check(datetime(9999, 12, 31, tzinfo=UTC), NOW)
    EventTimeBounds(max_age_s=0).check(datetime(1971, 1, 1, tzinfo=UTC), NOW)


def test_detector_clock_cannot_run_ahead_of_processing_time() -> None:
    year_9999 = datetime(9999, 1, 1, tzinfo=UTC).timestamp()
    busy = closed_minute([(year_9999, NOW), (NOW - 30, NOW)], NOW, idle_s=60, settle_s=60)
    idle = closed_minute([(year_9999, NOW - 3600)], NOW, idle_s=60, settle_s=60)
    for closed in (busy, idle):
        assert closed is not None and closed <= NOW - 60


def test_dead_letter_of_a_1_mb_record_stays_small_and_says_what_was_cut() -> None:
    raw = orjson.dumps({"id": "big", "text": "x" * 1_050_000, "platform": "x", "created_at": "2026-01-01T00:00:00Z"})
    letter = make_dead_letter(
        raw, InvalidRecord("payload_too_large", "too big"), topic="p", partition=0, offset=1, max_original_bytes=65536
    )
    assert len(letter.model_dump_json()) < 100_000
    assert letter.original_truncated and letter.original_length == len(raw)
    import base64
    import hashlib

    assert base64.b64decode(letter.original_b64) == raw[:65536]
    assert letter.original_sha256 == hashlib.sha256(raw).hexdigest()


def test_small_dead_letters_keep_the_whole_original() -> None:
    letter = make_dead_letter(b"{oops", InvalidRecord("malformed_json", "x"), topic="p", partition=0, offset=1)
    assert not letter.original_truncated and letter.original_length == 5


def test_settings_refuse_sizes_that_cannot_be_published() -> None:
    from stream_app.errors import ConfigError

    with pytest.raises(ConfigError):
        load_settings(max_payload_bytes=2_000_000)
    with pytest.raises(ConfigError):
        load_settings(dead_letter_max_original_bytes=1_000_000)


class FlakySink:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.applied: list[int] = []

    async def apply(self, records: object) -> int:
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("down")
        self.applied.append(1)
        return 1

    async def applied_offsets(self, partitions: object) -> dict[tuple[str, int], int]:
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("down")
        return {}


def fast_policy(retries: list[str | None]) -> RetryPolicy:
    base = retry_policy()
    return RetryPolicy(base.transient, base.dependency_of, max_wait_s=0.01, on_retry=retries.append)


async def test_infra_errors_block_and_retry_until_the_write_lands() -> None:
    retries: list[str | None] = []
    sink = FlakySink(3)
    wrapped = RetryingStore(sink, fast_policy(retries))  # type: ignore[arg-type]
    assert await wrapped.apply([]) == 1
    assert retries == ["redis"] * 3 and sink.applied == [1]
    assert await RetryingStore(FlakySink(2), fast_policy([])).applied_offsets([]) == {}  # type: ignore[arg-type]


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def bug() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retry_forever("x", bug, fast_policy([]))
    assert calls == 1


async def test_a_retrying_call_stops_on_cancellation() -> None:
    async def down() -> None:
        raise RedisConnectionError("down")

    task = asyncio.create_task(retry_forever("x", down))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
