"""The short chaos run (`python -m bench.chaos --short`) as tests: real Kafka, a Redis with an
append-only file, real worker processes. Each scenario must lose nothing and leave Redis exact."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator

import pytest

from bench.chaos import lost_writes, scenarios
from bench.chaos.check import Result
from bench.chaos.stack import AofRedis, start_kafka, temp_root

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.fixture(scope="module")
def chaos_env() -> Iterator[scenarios.Env]:
    root = temp_root()
    kafka = start_kafka(root)
    redis = AofRedis(root / "redis").start()
    try:
        yield scenarios.Env(kafka, redis, root)
    finally:
        redis.stop()
        kafka.stop()
        shutil.rmtree(root, ignore_errors=True)


def _assert_exact(result: Result) -> None:
    assert result.passed, result
    assert result.lost == 0 and result.keys_mismatched == 0 and result.keys_checked > 0, result


def test_worker_killed_three_times_under_load(chaos_env: scenarios.Env) -> None:
    result = scenarios.kill_workers(chaos_env, kills=3)
    _assert_exact(result)
    assert result.recovery_s is not None and result.recovery_s <= 15


def test_redis_killed_and_restarted_from_its_aof_loses_nothing(chaos_env: scenarios.Env) -> None:
    _assert_exact(scenarios.redis_outage(chaos_env, signal.SIGKILL, 15))


def test_fuzzed_records_with_a_1_mb_record_are_dead_lettered_with_their_reasons(chaos_env: scenarios.Env) -> None:
    result = scenarios.fuzz(chaos_env, 2000)
    _assert_exact(result)
    reasons = result.extra["reasons"]
    assert isinstance(reasons, dict)
    assert {"payload_too_large", "future_timestamp", "ancient_timestamp", "bad_utf8"} <= set(reasons)


def test_shutdown_with_redis_down_is_bounded_and_commits_nothing_unwritten(chaos_env: scenarios.Env) -> None:
    result = scenarios.shutdown_with_redis_down(chaos_env)
    _assert_exact(result)
    assert result.recovery_s is not None and result.recovery_s <= 30


def test_redis_restored_from_an_older_snapshot_is_noticed_and_replayed_from_kafka(chaos_env: scenarios.Env) -> None:
    result = lost_writes.restored_from_older_snapshot(chaos_env)
    _assert_exact(result)
    assert lost_writes.EXIT_REGRESSED in result.extra["worker_exits"]  # type: ignore[operator]


def test_cluster_kill9_and_a_failover_that_loses_writes_stay_exact(chaos_env: scenarios.Env) -> None:
    result = lost_writes.cluster_failover_and_kills(chaos_env)
    _assert_exact(result)
