"""The chaos scenarios. Each gets its own topics, consumer group and key prefix on the shared
broker and Redis, feeds records while it breaks something, and ends with `check.verdict`."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.chaos.check import Result, verdict
from bench.chaos.feed import Feed
from bench.chaos.stack import AofRedis, Stack, Worker, kill9_kafka
from stream_app.pipeline.counts import PartitionState
from stream_app.pipeline.keys import RedisKeys
from stream_app.testing.kafka_local import LocalKafka


@dataclass
class Env:
    kafka: LocalKafka
    redis: AofRedis
    root: Path
    rate: float = 40.0  # valid records per second while something breaks


def _last_write(stack: Stack) -> float:
    """When (wall clock) the store last applied a batch: the newest `updated` of any shard's fence."""
    client = redis.Redis.from_url(stack.redis.url, socket_timeout=2)
    keys = RedisKeys(stack.env["SM_REDIS_PREFIX"], stack.settings.redis_shards)
    try:
        fences = [client.hvals(keys.fence(shard)) for shard in range(keys.shards)]
        return max((PartitionState.decode(raw).updated for row in fences for raw in row), default=0.0)  # type: ignore[union-attr]
    except redis.RedisError:
        return 0.0
    finally:
        client.close()


def _first_write_after(stack: Stack, since: float, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _last_write(stack) > since:
            return time.time() - since
        time.sleep(0.25)
    return float("inf")


def _with_load(env: Env, name: str, body: Callable[[Stack, Feed, list[Worker]], None], result_name: str) -> Result:
    stack = Stack(env.kafka, env.redis, env.root, name)
    feed = Feed(stack.kafka.bootstrap, stack.env["SM_TOPIC_POSTS"], stack.env["SM_TOPIC_REVIEWS"])
    workers = [stack.worker(0)]
    workers[0].wait_ready()
    stop = threading.Event()
    producer = feed.steady(env.rate, stop)
    try:
        body(stack, feed, workers)
    finally:
        stop.set()
        producer.join()
    feed.flush()
    feed.close()
    result = verdict(result_name, stack.settings, feed.sent)
    for worker in workers:
        worker.stop()
    return result


def kill_workers(env: Env, kills: int, gap_s: float = 6.0) -> Result:
    """R1: kill -9 the worker `kills` times under load, restarting it at once (same instance id)."""
    recoveries: list[float] = []
    ready: list[float] = []  # kill -> restarted process ready (interpreter, imports, model load)

    def body(stack: Stack, feed: Feed, workers: list[Worker]) -> None:
        for _ in range(kills):
            time.sleep(gap_s)
            workers[-1].kill9()
            killed_at = time.time()
            workers.append(stack.worker(0))
            workers[-1].wait_ready()
            ready.append(time.time() - killed_at)
            recoveries.append(_first_write_after(stack, killed_at))
        time.sleep(gap_s)

    result = _with_load(env, "r1", body, f"R1 kill -9 x{kills}")
    result.recovery_s = max(recoveries)
    result.extra["restart_ready_s"] = [round(r, 1) for r in ready]
    result.extra["first_write_s"] = [round(r, 1) for r in recoveries]
    if result.recovery_s > 15:
        result.failures.append(f"recovery {result.recovery_s:.1f} s > 15 s")
    return result


def scale(env: Env) -> Result:
    """R2: 1 -> 2 -> 1 workers under load."""

    def body(stack: Stack, feed: Feed, workers: list[Worker]) -> None:
        time.sleep(8)
        workers.append(stack.worker(1))
        workers[-1].wait_ready()
        time.sleep(15)
        workers[-1].stop()
        time.sleep(15)

    return _with_load(env, "r2", body, "R2 1->2->1 workers")


def redis_outage(env: Env, sig: signal.Signals, down_s: float) -> Result:
    """R3: SIGSTOP Redis (then SIGCONT), or SIGKILL it and restart it from its append-only file."""
    recovery: list[float] = []

    def body(stack: Stack, feed: Feed, workers: list[Worker]) -> None:
        time.sleep(6)
        env.redis.signal(sig)
        time.sleep(down_s)
        back = time.time()
        if sig == signal.SIGSTOP:
            env.redis.signal(signal.SIGCONT)
        else:
            env.redis.start()
        recovery.append(_first_write_after(stack, back))
        time.sleep(6)
        if not workers[0].alive():
            raise RuntimeError(f"worker died during the Redis outage: {workers[0].log_tail()}")

    label = "SIGSTOP" if sig == signal.SIGSTOP else "SIGKILL+AOF restart"
    result = _with_load(env, f"r3{sig.name.lower()}", body, f"R3 Redis {label} {down_s:.0f} s")
    result.recovery_s = recovery[0] if recovery else None
    return result


def broker_outage(env: Env, down_s: float) -> Result:
    """R4: SIGKILL the broker, restart it from its log dirs after `down_s`."""

    def body(stack: Stack, feed: Feed, workers: list[Worker]) -> None:
        time.sleep(6)
        kill9_kafka(env.kafka)
        time.sleep(down_s)
        env.kafka.start()
        time.sleep(15)

    return _with_load(env, "r4", body, f"R4 broker SIGKILL {down_s:.0f} s")


def fuzz(env: Env, count: int) -> Result:
    """R5: fuzzed records mixed with valid ones; every bad one dead-lettered with its reason."""
    holder: list[Worker] = []

    def body(stack: Stack, feed: Feed, workers: list[Worker]) -> None:
        feed.fuzz(count, valid_share=0.5, big=max(1, count // 2000))
        holder.extend(workers)

    result = _with_load(env, "r5", body, f"R5 fuzz {count}")
    if holder and holder[0].process is not None and holder[0].process.returncode not in (None, 0):
        result.failures.append("worker crashed")
    return result


def shutdown_with_redis_down(env: Env) -> Result:
    """SIGTERM a worker while Redis is down (SIGKILLed): it must exit within 30 s."""
    stack = Stack(env.kafka, env.redis, env.root, "sd")
    feed = Feed(stack.kafka.bootstrap, stack.env["SM_TOPIC_POSTS"], stack.env["SM_TOPIC_REVIEWS"])
    worker = stack.worker(0)
    worker.wait_ready()
    feed.valid(200)
    feed.flush()
    time.sleep(3)
    env.redis.signal(signal.SIGKILL)
    feed.valid(100)
    feed.flush()
    time.sleep(12)  # past redis-py's own retries: the batch path is blocked, retrying
    took = worker.stop(timeout=120)
    env.redis.start()
    result = Result("shutdown, Redis down", records_in=len(feed.sent), recovery_s=took)
    result.extra["exit"] = worker.process.returncode if worker.process else None
    if took > 30:
        result.failures.append(f"stop took {took:.1f} s")
    # The records it could not write must still be counted by the next worker.
    follow = verdict_after_restart(stack, feed)
    result.scored, result.dead, result.lost = follow.scored, follow.dead, follow.lost
    result.duplicates, result.keys_checked, result.keys_mismatched = (
        follow.duplicates, follow.keys_checked, follow.keys_mismatched,
    )  # fmt: skip
    feed.close()
    return result


def verdict_after_restart(stack: Stack, feed: Feed) -> Result:
    worker = stack.worker(0)
    try:
        worker.wait_ready()
        return verdict("after restart", stack.settings, feed.sent)
    finally:
        worker.stop()
