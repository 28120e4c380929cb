"""A real Redis Cluster (three masters, one replica each) on loopback, for integration and chaos tests.

Why real processes and not a fake: what a cluster-aware store has to survive (MOVED redirects, a
master dying, a replica's election, writes the failover throws away) comes from redis-server's own
cluster bus and replication, and no fake reproduces their timing or their failure modes.

Every node is a `redis-server` child in its own directory under one temp dir (Redis 7 keeps its
AOF in `<dir>/appendonlydir`, so nodes cannot share a dir), listening on a free 127.0.0.1 port.
Nothing here talks to anything but those processes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis

from stream_app.testing.kafka_local import free_ports, wait_for_port
from stream_app.testing.redis_local import find_redis_server

MASTERS = 3
NODES = MASTERS * 2  # one replica per master
SLOTS = 16384
# A password no master asks for: a replica that sends it is refused at the AUTH step of its
# replication handshake, and keeps being refused on every retry (see `detach_replica`).
_BOGUS_MASTERAUTH = "sm-detached-replica"
_STOPPING = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def find_redis_cli() -> str:
    found = shutil.which("redis-cli") or str(Path(find_redis_server()).with_name("redis-cli"))
    if not Path(found).exists():
        raise RuntimeError("redis-cli not found: apt-get install redis-tools")
    return found


@dataclass(frozen=True)
class NodeInfo:
    """One node as the cluster sees it (a snapshot of CLUSTER NODES, not a live handle)."""

    port: int
    role: Literal["master", "replica"]
    node_id: str
    pid: int | None  # None while the process is down (killed and not restarted)
    master_id: str | None  # the master a replica follows; None for a master
    slots: tuple[tuple[int, int], ...]  # inclusive ranges a master serves; () for a replica
    flags: frozenset[str]  # as CLUSTER NODES prints them: fail, fail?, handshake, ...

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def failed(self) -> bool:
        """The cluster agreed the node is down (`fail`; a lone `fail?` suspicion does not count)."""
        return "fail" in self.flags

    def serves(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


NodeRef = NodeInfo | int  # a node, or its port


def parse_cluster_nodes(text: str, pids: dict[int, int] | None = None) -> list[NodeInfo]:
    """Parse CLUSTER NODES; `pids` maps port to pid for the processes that are running."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split()  # id addr flags master ping-sent pong-recv epoch link-state slot...
        node_id, addr, flags, master = fields[:4]
        port = int(addr.split("@")[0].rsplit(":", 1)[1] or 0)
        flag_set = frozenset(flags.split(","))
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # [slot->-id] / [slot-<-id]: a migration in flight, not ownership
                continue
            lo, _, hi = item.partition("-")
            slots.append((int(lo), int(hi or lo)))
        nodes.append(
            NodeInfo(
                port=port,
                role="master" if "master" in flag_set else "replica",
                node_id=node_id,
                pid=(pids or {}).get(port),
                master_id=None if master == "-" else master,
                slots=tuple(slots),
                flags=flag_set,
            )
        )
    return nodes


@dataclass
class LocalRedisCluster:
    """Start with `start()` (or `with`), stop with `stop()`; `url` is one live node for clients.

    `node_timeout_ms` is cluster-node-timeout: a dead master is failed over roughly 1-2 node
    timeouts after it dies, so the default 2 s keeps failover tests to a few seconds each.
    Persistence defaults to AOF with fsync every second, as production runs; `save` is the RDB
    save-point schedule ("" = none; a replica's full sync still ships an RDB).
    """

    node_timeout_ms: int = 2000
    appendonly: bool = True
    appendfsync: str = "everysec"
    save: str = ""
    extra_args: tuple[str, ...] = ()  # more redis-server options, e.g. ("--enable-debug-command", "local")
    data_dir: Path | None = None
    ports: list[int] = field(default_factory=list)
    bus_ports: dict[int, int] = field(default_factory=dict)  # client port -> cluster bus port
    _processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _paused: set[int] = field(default_factory=set)
    _owned_dir: bool = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, attempts: int = 3) -> LocalRedisCluster:
        """Start six nodes on free ports and form the cluster; a port race gets fresh ports."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except (RuntimeError, TimeoutError, subprocess.SubprocessError):
                self._kill_all()
                if attempt == attempts:
                    self.stop()
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> LocalRedisCluster:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="sm-redis-cluster-"))
            self._owned_dir = True
        # The bus port is chosen too: Redis's default (port + 10000) overflows for ports above 55535.
        chosen = free_ports(2 * NODES)
        self.ports, self.bus_ports = chosen[:NODES], dict(zip(chosen[:NODES], chosen[NODES:], strict=True))
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            wait_for_port(port, timeout, self._processes[port])
        log = (self.data_dir / "cluster-create.log").open("ab")
        try:
            subprocess.run(  # noqa: S603 - fixed argv: redis-cli and our own loopback ports
                [find_redis_cli(), "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", "1", "--cluster-yes"],
                stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=True,
            )  # fmt: skip
        finally:
            log.close()
        self.wait_stable(timeout, replicas=MASTERS)
        return self

    def _node_dir(self, port: int) -> Path:
        if self.data_dir is None:
            raise RuntimeError("cluster not started")
        return self.data_dir / str(port)

    def _spawn(self, port: int) -> None:
        node_dir = self._node_dir(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        log = (node_dir / "redis.log").open("ab")
        self._processes[port] = subprocess.Popen(  # noqa: S603 - fixed argv: redis-server and its options
            [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-port", str(self.bus_ports[port]),
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.appendfsync,
             "--save", self.save, "--repl-diskless-sync-delay", "0", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def _kill_all(self) -> None:
        for port in list(self._processes):
            self._reap(port, signal.SIGKILL)

    def _reap(self, port: int, sig: signal.Signals) -> None:
        process = self._processes.pop(port, None)
        if process is None:
            return
        if process.poll() is None:
            if port in self._paused:
                process.send_signal(signal.SIGCONT)  # a stopped process would never act on SIGTERM
            process.send_signal(sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._paused.discard(port)

    def stop(self) -> None:
        """Terminate every node (SIGTERM, SIGKILL after 10 s) and remove the temp dir if we made it."""
        for port in list(self._processes):
            self._reap(port, signal.SIGTERM)
        if self._owned_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir, self._owned_dir = None, False

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- looking ---------------------------------------------------------------------------

    def _running(self, port: int) -> bool:
        process = self._processes.get(port)
        return process is not None and process.poll() is None

    def _responsive_ports(self) -> list[int]:
        """Ports of nodes that are up and not SIGSTOPped: the ones worth asking."""
        return [p for p in self.ports if self._running(p) and p not in self._paused]

    @contextmanager
    def client(self, node: NodeRef) -> Iterator[redis.Redis]:
        """A plain (non-cluster) client to one node, for admin commands and direct reads."""
        conn = redis.Redis(host="127.0.0.1", port=_port(node), decode_responses=True,
                           socket_timeout=5, socket_connect_timeout=2)  # fmt: skip
        try:
            yield conn
        finally:
            conn.close()

    def _command(self, node: NodeRef, *args: Any) -> Any:
        with self.client(node) as conn:
            return conn.execute_command(*args)  # type: ignore[no-untyped-call]

    def _cluster_info(self, port: int) -> dict[str, str]:
        text: str = self._command(port, "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _link_status(self, port: int) -> str | None:
        """A replica's master_link_status (up/down); None on a master."""
        status: str | None = self._command(port, "INFO", "replication").get("master_link_status")
        return status

    def _view(self, port: int) -> list[NodeInfo]:
        pids = {p: proc.pid for p, proc in self._processes.items() if proc.poll() is None}
        return parse_cluster_nodes(self._command(port, "CLUSTER", "NODES"), pids)

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT of a live node, a seed for `RedisCluster.from_url`."""
        live = self._responsive_ports()
        if not live:
            raise RuntimeError("no live node")
        return f"redis://127.0.0.1:{live[0]}"

    @property
    def nodes(self) -> list[NodeInfo]:
        """Every node as the first responsive node sees it, in port order."""
        return sorted(self._view(self._responsive_ports()[0]), key=lambda n: n.port)

    def node(self, node: NodeRef) -> NodeInfo:
        port = _port(node)
        return next(n for n in self.nodes if n.port == port)

    def masters(self) -> list[NodeInfo]:
        """Masters that serve slots and are not failed."""
        return [n for n in self.nodes if n.role == "master" and n.slots and not n.failed]

    def replica_of(self, master: NodeRef) -> NodeInfo:
        """The (non-failed) replica following `master`."""
        master_id = self.node(master).node_id
        for n in self.nodes:
            if n.role == "replica" and n.master_id == master_id and not n.failed:
                return n
        raise LookupError(f"no live replica of node {master_id}")

    def keyslot(self, key: str | bytes) -> int:
        return int(self._command(self._responsive_ports()[0], "CLUSTER", "KEYSLOT", key))

    def master_for_key(self, key: str | bytes) -> NodeInfo:
        """The master serving `key` now (CLUSTER KEYSLOT, then the cluster's slot map)."""
        slot = self.keyslot(key)
        return next(n for n in self.masters() if n.serves(slot))

    def wait_stable(self, timeout: float = 30.0, replicas: int = 0) -> None:
        """Until every responsive node says cluster_state:ok with all slots served, they all see
        the same roles, masters and slot owners for the responsive nodes, none of those is flagged
        failing, every replica's link is up, and at least `replicas` replicas are in service."""
        deadline = time.monotonic() + timeout
        while not self._stable(replicas):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not stable within {timeout}s: {self._describe()}")
            time.sleep(0.1)

    def _stable(self, replicas: int = 0) -> bool:
        live = self._responsive_ports()
        try:
            topologies = set()
            for port in live:
                info = self._cluster_info(port)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                    return False
                view = [n for n in self._view(port) if n.port in live]
                if len(view) != len(live) or any(n.flags & {"fail", "fail?", "handshake", "noaddr"} for n in view):
                    return False
                topologies.add(tuple(sorted((n.port, n.role, n.master_id, n.slots) for n in view)))
                myself = next(n for n in view if "myself" in n.flags)
                if myself.role == "replica" and self._link_status(port) != "up":
                    return False
            if len(topologies) != 1:
                return False
            return sum(role == "replica" for _, role, _, _ in topologies.pop()) >= replicas
        except (redis.RedisError, OSError, StopIteration):
            return False

    def _describe(self) -> str:
        try:
            return "; ".join(f"{n.port} {','.join(sorted(n.flags))} slots={len(n.slots)}" for n in self.nodes)
        except (redis.RedisError, OSError, IndexError) as exc:
            return f"unreadable ({exc!r})"

    # ---- chaos -----------------------------------------------------------------------------

    def kill(self, node: NodeRef, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to a node's process. SIGKILL/SIGTERM wait for it to exit; SIGSTOP/SIGCONT
        freeze and thaw it (a frozen node keeps its sockets: to peers it is a hung node)."""
        port = _port(node)
        process = self._processes.get(port)
        if process is None or process.poll() is not None:
            raise RuntimeError(f"node {port} is not running")
        if sig in _STOPPING:
            self._reap(port, sig)
            return
        process.send_signal(sig)
        if sig == signal.SIGSTOP:
            self._paused.add(port)
        elif sig == signal.SIGCONT:
            self._paused.discard(port)

    def wait_failover(self, old_master: NodeRef, timeout: float = 30.0) -> NodeInfo:
        """After `old_master` died: wait until the cluster marks it `fail`, one of its replicas
        serves its slots, and every live node is `cluster_state:ok` again; return the promoted node.

        Pass the NodeInfo taken before the kill, or the port (its slots are then read from the
        cluster's view, which keeps them until the failover completes)."""
        before = old_master if isinstance(old_master, NodeInfo) else self.node(old_master)
        if not before.slots:
            raise ValueError(f"node {before.port} served no slots")
        slot = before.slots[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                view = {n.node_id: n for n in self.nodes}
                promoted = next((n for n in view.values() if n.serves(slot) and n.role == "master"), None)
                if (
                    promoted is not None
                    and promoted.port != before.port
                    and view[before.node_id].failed
                    and self._stable()
                ):
                    return promoted
            except (redis.RedisError, OSError, KeyError, IndexError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"no failover of node {before.port} within {timeout}s: {self._describe()}")

    def restart(self, node: NodeRef, timeout: float = 30.0) -> NodeInfo:
        """Start a killed node again on its port, with its nodes.conf and AOF; a master that was
        failed over meanwhile rejoins as a replica of its successor (and full-syncs from it)."""
        port = _port(node)
        if self._running(port):
            raise RuntimeError(f"node {port} is still running")
        self._processes.pop(port, None)
        self._spawn(port)
        wait_for_port(port, timeout, self._processes[port])
        self.wait_stable(timeout)
        return self.node(port)

    def heal(self, timeout: float = 60.0) -> None:
        """Undo every chaos step: thaw frozen nodes, reattach detached replicas, restart dead
        nodes, and wait for a stable cluster: a fixture calls this between tests."""
        for port in list(self._paused):
            self.kill(port, signal.SIGCONT)
        for port in self.ports:
            if self._running(port):
                self._command(port, "CONFIG", "SET", "masterauth", "")
            else:
                self._processes.pop(port, None)
                self._spawn(port)
                wait_for_port(port, timeout, self._processes[port])
        self.wait_stable(timeout, replicas=MASTERS)

    # ---- losing acknowledged writes on purpose ---------------------------------------------

    def detach_replica(self, replica: NodeRef, timeout: float = 10.0) -> None:
        """Cut a replica off its master's replication stream, and keep it off, while the cluster
        bus still sees both as healthy: writes the master acknowledges from now on never reach it.

        How: the replica gets a `masterauth` its master does not accept, then the master drops
        the replication link (CLIENT KILL TYPE replica); each reconnect the replica tries fails at
        AUTH. Freezing the replica (SIGSTOP, DEBUG SLEEP) does not do this: the master's stream
        waits in the replica's socket buffer and is applied when it thaws, even if the master is
        dead by then. CLIENT PAUSE WRITE on the replica does lose the writes on Redis 7.0 (it
        postpones the master link's commands too), but only if the master dies before UNPAUSE,
        and it stalls the replica's own clients meanwhile. tests/integration/
        test_redis_cluster_kit.py shows SIGSTOP and CLIENT PAUSE side by side."""
        info = self.node(replica)
        if info.role != "replica" or info.master_id is None:
            raise ValueError(f"node {info.port} is not a replica")
        master = next(n for n in self.nodes if n.node_id == info.master_id)
        self._command(info.port, "CONFIG", "SET", "masterauth", _BOGUS_MASTERAUTH)
        self._command(master.port, "CLIENT", "KILL", "TYPE", "replica")
        deadline = time.monotonic() + timeout
        while self._link_status(info.port) != "down":
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {info.port} still linked to its master after {timeout}s")
            time.sleep(0.05)

    def reattach_replica(self, node: NodeRef) -> None:
        """Undo `detach_replica`: clear the bogus masterauth (the replica resyncs within ~1 s)."""
        self._command(node, "CONFIG", "SET", "masterauth", "")

    def fail_over_losing_writes(self, master: NodeRef, during: Callable[[], object], timeout: float = 30.0) -> NodeInfo:
        """Make a failover lose acknowledged writes: detach `master`'s replica, run `during` (the
        writes to lose; the master acknowledges them), SIGKILL the master, wait until the replica
        is promoted without them, and return it. `during` should take well under
        10 x node_timeout (the replica's data-age limit for standing in an election)."""
        replica = self.replica_of(master)
        before = self.node(master)
        self.detach_replica(replica)
        try:
            during()
        except BaseException:
            self.reattach_replica(replica)
            raise
        self.kill(before)
        promoted = self.wait_failover(before, timeout)
        self.reattach_replica(promoted)
        return promoted


def _port(node: NodeRef) -> int:
    return node.port if isinstance(node, NodeInfo) else int(node)
