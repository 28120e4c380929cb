"""A single redis-server that can be SIGKILLed and brought back from an older RDB snapshot.

For the chaos case "Redis killed under load and restarted from an older snapshot": the store must
notice (or survive) aggregates that went back in time. Built on `LocalRedis`, which already runs
with RDB only (`appendonly no`) and no save points (`save ""`): the only snapshots are the ones a
test takes with `snapshot()`, so what a restart loads is exactly what the test chose.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from stream_app.testing.redis_local import LocalRedis

DUMP = "dump.rdb"  # redis-server's default dbfilename, which LocalRedis does not change


@dataclass
class SnapshotRedis(LocalRedis):
    """`LocalRedis` plus `snapshot()`, `kill()` and `restart_from(path)`; the port never changes.

    Lives in one temp dir: `data/` is redis-server's --dir, `snapshots/` the copies taken aside.
    """

    root: Path | None = None
    _snapshots: int = 0

    def start(self, timeout: float = 20.0, attempts: int = 3) -> SnapshotRedis:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="sm-redis-snap-"))
        if self.data_dir is None:
            self.data_dir = self.root / "data"  # not `_owned_dir`: stop() removes `root` whole
        super().start(timeout, attempts)
        self._wait_loaded(timeout)
        return self

    def __enter__(self) -> SnapshotRedis:
        return self.start()

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def _persistence(self) -> dict[str, object]:
        with self._client() as conn:
            info: dict[str, object] = conn.info("persistence")
            return info

    def _wait_loaded(self, timeout: float) -> None:
        """Until the dataset is loaded: the port opens before an RDB finishes loading."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self._client() as conn:
                    conn.ping()
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis on {self.port} still loading after {timeout}s") from None
                time.sleep(0.05)

    def snapshot(self, timeout: float = 30.0) -> Path:
        """BGSAVE, wait until it completed and succeeded, copy dump.rdb aside; return the copy."""
        if self.root is None or self.data_dir is None:
            raise RuntimeError("not started")
        deadline = time.monotonic() + timeout
        while self._persistence()["rdb_bgsave_in_progress"]:  # one fork at a time: BGSAVE would fail
            if time.monotonic() > deadline:
                raise TimeoutError("an earlier BGSAVE is still running")
            time.sleep(0.05)
        saves = int(str(self._persistence()["rdb_saves"]))  # LASTSAVE only has 1 s resolution
        with self._client() as conn:
            conn.bgsave()
        while True:
            info = self._persistence()
            if int(str(info["rdb_saves"])) > saves and not info["rdb_bgsave_in_progress"]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"BGSAVE did not finish within {timeout}s")
            time.sleep(0.05)
        if info["rdb_last_bgsave_status"] != "ok":
            raise RuntimeError(f"BGSAVE failed: see {self.data_dir / 'redis.log'}")
        self._snapshots += 1
        target = self.root / "snapshots" / f"snapshot-{self._snapshots}.rdb"
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(self.data_dir / DUMP, target)
        return target

    def kill(self) -> None:
        """SIGKILL: no shutdown save, nothing flushed, clients see the connection drop."""
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("redis is not running")
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def restart_from(self, snapshot: Path, timeout: float = 20.0) -> SnapshotRedis:
        """Start again on the same port and options with `snapshot` as the dataset (SIGKILLs a
        running server first): the dataset goes back to the moment that snapshot was taken."""
        if self.data_dir is None:
            raise RuntimeError("not started")
        if self._process is not None and self._process.poll() is None:
            self.kill()
        shutil.copyfile(snapshot, self.data_dir / DUMP)
        super().start(timeout, attempts=1)  # attempts=1: a retry would move to another port
        self._wait_loaded(timeout)
        return self

    def stop(self) -> None:
        super().stop()
        if self.root is not None:
            if self.data_dir is not None and self.data_dir.is_relative_to(self.root):
                self.data_dir = None  # ours: the next start() makes a fresh one
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
