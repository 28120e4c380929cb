"""The Redis test kit against real redis-server processes: a six-node cluster that fails over and
can lose acknowledged writes on purpose, and a single node restorable from an older RDB snapshot.

The redis-py tests also pin down what redis-py's asyncio RedisCluster does with cluster pipelines,
transactions, EVALSHA and NOSCRIPT after a failover (on Redis 7.0), for the cluster-aware store.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    CrossSlotTransactionError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    WatchError,
)

from stream_app.testing import redis_cluster
from stream_app.testing.redis_cluster import SLOTS, LocalRedisCluster, NodeInfo
from stream_app.testing.redis_snapshot import SnapshotRedis

pytestmark = pytest.mark.integration

# Sets KEYS[1] and adds ARGV[1] to KEYS[2]: two keys, so the cluster insists on one slot.
LUA = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[1])"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with LocalRedisCluster() as started:
        yield started


@pytest.fixture
def healthy(cluster: LocalRedisCluster) -> Iterator[LocalRedisCluster]:
    """The shared cluster; whatever a test killed, froze or detached is undone after it."""
    yield cluster
    cluster.heal()
    masters = cluster.masters()
    assert len(masters) == 3 and all(_alive(cluster.replica_of(m).pid) for m in masters)


@pytest.fixture
async def rc(cluster: LocalRedisCluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    await client.initialize()
    yield client
    await client.aclose()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _counter_on(cluster: LocalRedisCluster, node: NodeInfo, key: str) -> str | None:
    with cluster.client(node) as conn:
        conn.execute_command("READONLY")  # lets a replica answer for its master's slots
        value: str | None = conn.get(key)
        return value


def test_cluster_forms_three_masters_each_with_a_synced_replica(cluster: LocalRedisCluster) -> None:
    masters = cluster.masters()
    assert len(masters) == 3
    ranges = sorted(r for m in masters for r in m.slots)
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))  # no gap, no overlap
    replicas = [cluster.replica_of(m) for m in masters]
    assert len({n.port for n in masters + replicas}) == 6 and all(_alive(n.pid) for n in masters + replicas)
    for master, replica in zip(masters, replicas, strict=True):
        with cluster.client(replica) as conn:
            info = conn.info("replication")
        assert (info["role"], info["master_port"], info["master_link_status"]) == ("slave", master.port, "up")
    for node in cluster.nodes:
        with cluster.client(node) as conn:
            assert "cluster_state:ok" in conn.execute_command("CLUSTER", "INFO")
            assert conn.config_get("appendonly") == {"appendonly": "yes"}
            assert conn.config_get("cluster-node-timeout") == {"cluster-node-timeout": "2000"}


def test_master_for_key_is_the_node_that_accepts_the_key(cluster: LocalRedisCluster) -> None:
    keys = ["{g1}a", *(f"k{i}" for i in range(30))]
    owners = {key: cluster.master_for_key(key) for key in keys}
    assert len({o.port for o in owners.values()}) == 3  # 30 keys reach every master
    for key, owner in owners.items():
        assert owner.serves(key_slot(key.encode()))
        with cluster.client(owner) as conn:
            assert conn.set(key, "v")
        other = next(m for m in cluster.masters() if m.port != owner.port)
        with cluster.client(other) as conn, pytest.raises(MovedError) as moved:
            conn.set(key, "v")
        assert (moved.value.slot_id, moved.value.port) == (key_slot(key.encode()), owner.port)


async def test_redis_py_cluster_client_scripts_and_transactions(cluster: LocalRedisCluster, rc: RedisCluster) -> None:
    for i in range(30):
        await rc.set(f"rw{i}", i)
    assert [await rc.get(f"rw{i}") for i in range(30)] == [str(i) for i in range(30)]
    assert len({cluster.master_for_key(f"rw{i}").port for i in range(30)}) == 3

    # EVAL on keys sharing the hash tag {g1}; keys in two slots are refused before sending.
    assert await rc.eval(LUA, 2, "{g1}a", "{g1}b", 5) == 5
    with pytest.raises(RedisClusterException, match="same key slot"):
        await rc.eval(LUA, 2, "a", "b", 5)

    # redis-py 8.2: pipeline(transaction=True) is MULTI/EXEC on one slot (the docstring of
    # RedisCluster.pipeline still says transactions are unsupported; the code supports them).
    async with rc.pipeline(transaction=True) as tx:
        tx.set("{g1}x", 1).incr("{g1}x").get("{g1}x")
        assert await tx.execute() == [True, 2, "2"]
    with pytest.raises(CrossSlotTransactionError):
        async with rc.pipeline(transaction=True) as tx:
            await tx.set("a", 1).set("b", 2).execute()
    # WATCH works too, and a concurrent write aborts the transaction.
    async with rc.pipeline(transaction=True) as tx:
        await tx.watch("{g1}x")
        seen = await tx.get("{g1}x")
        await rc.set("{g1}x", 100)
        tx.multi()
        tx.set("{g1}x", int(seen) + 1)
        with pytest.raises(WatchError):
            await tx.execute()
    assert await rc.get("{g1}x") == "100"

    # EVALSHA in pipelines: fine once loaded, in plain and transactional pipelines alike.
    sha = await rc.script_load(LUA)
    async with rc.pipeline() as pipe:
        assert await pipe.evalsha(sha, 2, "{g1}a", "{g1}b", 1).get("{g1}b").execute() == [6, "6"]
    async with rc.pipeline(transaction=True) as tx:
        assert await tx.evalsha(sha, 2, "{g1}a", "{g1}b", 1).get("{g1}b").execute() == [7, "7"]
    # An unknown SHA: the pipeline raises NoScriptError, or returns it in place with
    # raise_on_error=False (the other commands still ran). Pipelines never load the script.
    unknown = "0" * 40
    with pytest.raises(NoScriptError):
        async with rc.pipeline() as pipe:
            await pipe.evalsha(unknown, 2, "{g1}a", "{g1}b", 1).get("{g1}b").execute()
    async with rc.pipeline() as pipe:
        result = await pipe.evalsha(unknown, 2, "{g1}a", "{g1}b", 1).get("{g1}b").execute(raise_on_error=False)
    assert isinstance(result[0], NoScriptError) and result[1] == "7"

    # SCRIPT LOAD through the cluster client reaches the masters only: Redis 7 does not
    # replicate the script cache, which is why EVALSHA can fail after a failover (next test).
    for node in cluster.nodes:
        with cluster.client(node) as conn:
            assert conn.script_exists(sha) == [node.role == "master"], node


async def test_kill_a_master_the_replica_takes_over_and_writes_continue(
    healthy: LocalRedisCluster, rc: RedisCluster
) -> None:
    cluster = healthy
    script = rc.register_script(LUA)
    sha = await rc.script_load(LUA)
    old = cluster.master_for_key("{g1}n")
    replica = cluster.replica_of(old)
    await rc.set("{g1}n", 1)
    with cluster.client(old) as conn:
        assert conn.execute_command("WAIT", 1, 5000) == 1  # the replica has it before the kill

    started = time.monotonic()
    cluster.kill(old)
    failover = asyncio.ensure_future(asyncio.to_thread(cluster.wait_failover, old, 30.0))
    # A write issued while the master is dead and no replica is promoted yet: redis-py 8.2's
    # default Retry (10 attempts, jittered exponential backoff, slot-map refresh on connection
    # errors) usually waits the election out and lands the write on the promoted node; when its
    # retries run out first it raises ConnectionError, which the caller must retry.
    errors: list[str] = []
    deadline = time.monotonic() + 30
    while True:
        try:
            value = await rc.incr("{g1}n")
            break
        except (redis.ConnectionError, redis.TimeoutError, ClusterDownError) as exc:
            errors.append(type(exc).__name__)
            assert time.monotonic() < deadline, errors
            await asyncio.sleep(0.2)
    promoted = await failover
    assert value == 2  # the write acknowledged (and replicated) before the kill survived
    assert promoted.port == replica.port and promoted.node_id == replica.node_id
    assert time.monotonic() - started < 20
    assert cluster.node(old).failed and old.port not in {m.port for m in cluster.masters()}
    assert len(cluster.masters()) == 3
    assert set(errors) <= {"ConnectionError", "TimeoutError", "ClusterDownError"}
    assert _counter_on(cluster, promoted, "{g1}n") == "2"

    # NOSCRIPT after failover: the promoted replica never had the script. EVALSHA raises
    # NoScriptError, in a pipeline too; a registered Script object reloads it and succeeds.
    with cluster.client(promoted) as conn:
        assert conn.script_exists(sha) == [False]
    with pytest.raises(NoScriptError):
        await rc.evalsha(sha, 2, "{g1}a", "{g1}b", 1)
    with pytest.raises(NoScriptError):
        async with rc.pipeline() as pipe:
            await pipe.evalsha(sha, 2, "{g1}a", "{g1}b", 1).execute()
    assert await script(keys=["{g1}a", "{g1}b"], args=[1]) == int(await rc.get("{g1}b"))
    with cluster.client(promoted) as conn:
        assert conn.script_exists(sha) == [True]

    # The old master comes back as a replica of its successor, with the data.
    back = cluster.restart(old)
    assert (back.role, back.master_id) == ("replica", promoted.node_id)
    assert _alive(back.pid) and _counter_on(cluster, back, "{g1}n") == "2"


def test_a_detached_replica_misses_writes_until_reattached(healthy: LocalRedisCluster) -> None:
    cluster = healthy
    key = "detach:{g3}"
    master = cluster.master_for_key(key)
    replica = cluster.replica_of(master)
    cluster.detach_replica(replica)
    with cluster.client(master) as conn:
        conn.set(key, "while-detached")
        assert conn.execute_command("WAIT", 1, 1500) == 0  # > 1 s: the replica's reconnects fail
    assert _counter_on(cluster, replica, key) is None
    assert not cluster.node(replica).failed and not cluster.node(master).failed  # the bus saw nothing

    cluster.reattach_replica(replica)
    with cluster.client(master) as conn:
        assert conn.execute_command("WAIT", 1, 10000) == 1
    assert _counter_on(cluster, replica, key) == "while-detached"


def test_fail_over_losing_writes_drops_an_acknowledged_write(healthy: LocalRedisCluster) -> None:
    cluster = healthy
    key = "lost:{g2}"
    master = cluster.master_for_key(key)
    replica = cluster.replica_of(master)
    with cluster.client(master) as conn:
        conn.set(key, 1)
        assert conn.execute_command("WAIT", 1, 5000) == 1
    assert _counter_on(cluster, replica, key) == "1"

    acknowledged: list[tuple[int, int]] = []

    def during() -> None:
        with cluster.client(master) as conn:
            acknowledged.append((conn.incr(key), conn.execute_command("WAIT", 1, 300)))

    promoted = cluster.fail_over_losing_writes(master, during)
    assert acknowledged == [(2, 0)]  # the master said 2; no replica confirmed it
    assert promoted.port == replica.port
    assert _counter_on(cluster, promoted, key) == "1"  # the acknowledged write is gone

    # For good: the old master rejoins as a replica and is resynced to the promoted history.
    back = cluster.restart(master)
    assert back.master_id == promoted.node_id and _counter_on(cluster, back, key) == "1"
    # And the promoted node's own replication works again once it has a replica.
    with cluster.client(promoted) as conn:
        conn.incr(key)
        assert conn.execute_command("WAIT", 1, 5000) == 1
    assert _counter_on(cluster, back, key) == "2"


@pytest.mark.parametrize(("stall", "after_failover"), [("sigstop", "2"), ("client-pause-write", "1")])
def test_which_replica_stalls_lose_an_acknowledged_write(
    healthy: LocalRedisCluster, stall: str, after_failover: str
) -> None:
    """Evidence for `detach_replica`'s design. A SIGSTOPped (or DEBUG SLEEPing) replica loses
    nothing: the master's stream waits in its socket buffer and is applied when it thaws, even
    after the master died. A replica under CLIENT PAUSE WRITE on Redis 7.0 does lose the write:
    the pause postpones its master link's commands too, and when that link drops the buffered
    stream is discarded. (It needs the master dead before UNPAUSE and blocks the replica's own
    clients; `detach_replica` needs neither.)"""
    cluster = healthy
    key = f"stall:{stall}"
    master = cluster.master_for_key(key)
    replica = cluster.replica_of(master)
    with cluster.client(master) as conn:
        conn.set(key, 1)
        assert conn.execute_command("WAIT", 1, 5000) == 1
    if stall == "sigstop":
        cluster.kill(replica, signal.SIGSTOP)
    else:
        with cluster.client(replica) as conn:
            conn.execute_command("CLIENT", "PAUSE", 20000, "WRITE")
    with cluster.client(master) as conn:
        assert conn.incr(key) == 2
        assert conn.execute_command("WAIT", 1, 300) == 0  # acknowledged, not confirmed by the replica
    cluster.kill(master)
    if stall == "sigstop":
        cluster.kill(replica, signal.SIGCONT)
    else:
        with cluster.client(replica) as conn:
            deadline = time.monotonic() + 10
            while conn.info("replication")["master_link_status"] != "down":  # INFO is not paused
                assert time.monotonic() < deadline
                time.sleep(0.05)
            conn.execute_command("CLIENT", "UNPAUSE")
    promoted = cluster.wait_failover(master)
    assert promoted.port == replica.port
    assert _counter_on(cluster, promoted, key) == after_failover


def test_a_failed_start_leaves_no_process_and_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_cluster, "find_redis_cli", lambda: "/bin/false")  # `--cluster create` fails
    broken = LocalRedisCluster()
    spawned: list[int] = []
    dirs: set[Path] = set()
    spawn = broken._spawn

    def recording_spawn(port: int) -> None:
        spawn(port)
        spawned.append(broken._processes[port].pid)
        dirs.add(broken._node_dir(port).parent)

    monkeypatch.setattr(broken, "_spawn", recording_spawn)
    with pytest.raises(subprocess.CalledProcessError):
        broken.start(timeout=10, attempts=2)
    assert len(spawned) == 12  # two attempts of six nodes
    assert not any(_alive(pid) for pid in spawned)
    assert broken.data_dir is None and not broken._processes
    assert len(dirs) == 1 and not dirs.pop().exists()


def test_snapshot_restart_brings_back_the_older_dataset() -> None:
    with SnapshotRedis() as server:
        port, root = server.port, server.root
        assert root is not None
        conn = redis.Redis.from_url(server.url, decode_responses=True)
        conn.set("a", 1)
        conn.hset("h", mapping={"f": "x"})
        first = server.snapshot()
        conn.set("a", 2)
        conn.set("b", "new")
        second = server.snapshot()
        conn.set("a", 3)
        assert first != second and first.exists() and second.exists()

        server.kill()
        with pytest.raises(redis.ConnectionError):
            conn.get("a")
        server.restart_from(first)
        assert server.port == port
        assert (conn.get("a"), conn.get("b"), conn.hgetall("h")) == ("1", None, {"f": "x"})

        server.restart_from(second)  # kills the running server itself
        assert (conn.get("a"), conn.get("b")) == ("2", "new")
        conn.close()
    assert not root.exists()


def test_redis_killed_under_load_restarts_from_an_older_snapshot() -> None:
    with SnapshotRedis() as server:
        acked = 0
        stop = threading.Event()

        def load() -> None:
            nonlocal acked
            with redis.Redis.from_url(server.url) as writer:
                while not stop.is_set():
                    try:
                        acked = int(writer.incr("counter"))
                    except redis.ConnectionError:
                        return

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + 30
            while acked < count:
                assert thread.is_alive() and time.monotonic() < deadline, acked
                time.sleep(0.01)

        thread = threading.Thread(target=load)
        thread.start()
        try:
            wait_for(200)
            before = acked
            snapshot = server.snapshot()
            after = acked
            wait_for(after + 200)
            server.kill()
        finally:
            stop.set()
            thread.join(10)
        server.restart_from(snapshot)
        with redis.Redis.from_url(server.url) as conn:
            restored = int(conn.get("counter") or 0)
        # One writer, one command in flight: the snapshot holds at most one unacknowledged INCR.
        assert before <= restored <= after + 1
        assert acked >= after + 200  # everything acknowledged after the snapshot is gone
