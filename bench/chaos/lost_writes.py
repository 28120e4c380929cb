"""Chaos cases where Redis loses acknowledged writes, and the worker on a Redis Cluster.

R7: Redis is SIGKILLed under load and restarted from an older RDB snapshot: every shard's fence
    and counts go back to the snapshot while Kafka's committed offsets stay ahead.
R8: a Redis Cluster (3 masters, a replica each): the worker is killed -9 twice under load, then a
    master is killed after its replica was cut off, so the promoted replica lacks acknowledged
    writes (`LocalRedisCluster.fail_over_losing_writes`).

In both, the worker that meets a fence lower than it last wrote exits (status 70); a supervisor,
here `Supervisor`, restarts it, and it resumes every partition from the store's fences. The
verdict is the same as every scenario's: nothing lost, every aggregate equal to a recomputation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bench.chaos.check import Result, verdict
from bench.chaos.feed import Feed
from bench.chaos.scenarios import Env
from bench.chaos.stack import Stack, Worker
from stream_app.testing.redis_cluster import LocalRedisCluster
from stream_app.testing.redis_snapshot import SnapshotRedis

EXIT_REGRESSED = 70


@dataclass
class Supervisor:
    """Restarts the worker whenever it exits, as Kubernetes or systemd would."""

    stack: Stack
    workers: list[Worker] = field(default_factory=list)
    exits: list[int | None] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Supervisor:
        self.workers.append(self.stack.worker(0))
        self.workers[-1].wait_ready()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            current = self.workers[-1]
            if current.alive():
                continue
            self.exits.append(current.process.returncode if current.process else None)
            self.workers.append(self.stack.worker(0))

    def kill9(self) -> None:
        self.workers[-1].kill9()

    def wait_restarted(self, exits: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.exits) < exits or not self.workers[-1].ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no restart after {timeout:.0f} s: {self.workers[-1].log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.stop()


@dataclass
class _Url:
    url: str


def _run(env: Env, name: str, url: str, body: object, label: str, extra_env: dict[str, str]) -> Result:
    stack = Stack(env.kafka, _Url(url), env.root, name)  # type: ignore[arg-type]
    stack.env.update({"SM_REDIS_URL": url, **extra_env})
    feed = Feed(stack.kafka.bootstrap, stack.env["SM_TOPIC_POSTS"], stack.env["SM_TOPIC_REVIEWS"])
    supervisor = Supervisor(stack).start()
    stop = threading.Event()
    producer = feed.steady(env.rate, stop)
    try:
        body(stack, supervisor)  # type: ignore[operator]
    finally:
        stop.set()
        producer.join()
    feed.flush()
    feed.close()
    try:
        result = verdict(label, stack.settings, feed.sent)
    finally:
        supervisor.stop()
    result.extra["worker_exits"] = supervisor.exits
    return result


def restored_from_older_snapshot(env: Env) -> Result:
    """R7: Redis SIGKILLed under load and restarted from a snapshot taken 8 s earlier."""
    snapshot_redis = SnapshotRedis(root=env.root / "r7-redis").start()
    timings: dict[str, float] = {}

    def body(stack: Stack, supervisor: Supervisor) -> None:
        time.sleep(8)
        snapshot = snapshot_redis.snapshot()
        time.sleep(8)  # acknowledged writes the snapshot does not hold
        snapshot_redis.kill()
        time.sleep(3)
        snapshot_redis.restart_from(snapshot)
        restored = time.monotonic()
        supervisor.wait_restarted(1)
        timings["restart_s"] = round(time.monotonic() - restored, 1)
        time.sleep(8)

    try:
        result = _run(env, "r7", snapshot_redis.url, body, "R7 Redis restored from an older snapshot", {})
    finally:
        snapshot_redis.stop()
    result.extra.update(timings)
    if EXIT_REGRESSED not in result.extra["worker_exits"]:  # type: ignore[operator]
        result.failures.append("the worker did not notice the store going back")
    return result


def cluster_failover_and_kills(env: Env) -> Result:
    """R8: on a Redis Cluster, kill -9 the worker twice, then fail a master over losing writes."""
    with LocalRedisCluster() as cluster:
        url = "redis+cluster://" + cluster.url.split("://", 1)[1]

        def body(stack: Stack, supervisor: Supervisor) -> None:
            for kills in (1, 2):
                time.sleep(6)
                supervisor.kill9()
                supervisor.wait_restarted(kills)
            time.sleep(4)
            from stream_app.pipeline.keys import RedisKeys

            victim = cluster.master_for_key(RedisKeys(stack.env["SM_REDIS_PREFIX"]).fence(0))
            cluster.fail_over_losing_writes(victim, lambda: time.sleep(4))
            supervisor.wait_restarted(3)
            time.sleep(8)

        result = _run(env, "r8", url, body, "R8 cluster: kill -9 x2, failover losing writes", {})
    if result.extra["worker_exits"].count(EXIT_REGRESSED) < 1:  # type: ignore[attr-defined]
        result.failures.append("the worker did not notice the failover's lost writes")
    return result
