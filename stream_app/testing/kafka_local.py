"""A real single-node Apache Kafka broker (KRaft) on loopback, for tests and the demo.

Never on the service's code path: production points `SM_KAFKA_BOOTSTRAP` at its own cluster.
The jars come from `deploy/kafka/pom.xml` through Maven and are cached under the cache dir.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from stream_app.resources import kafka_pom, local_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = kafka_pom()  # deploy/kafka/pom.xml in a checkout, the packaged copy when installed


def default_cache_dir() -> Path:
    return local_cache_dir()


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so the kernel
    cannot hand the same port out twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def fetch_kafka_jars(cache_dir: Path | None = None) -> Path:
    """Resolve the broker's jars once with Maven; later calls reuse the cache."""
    libs = (cache_dir or default_cache_dir()) / "kafka-libs"
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to fetch Kafka's jars; install it or set SM_LOCAL_CACHE")
    staging = libs.with_name("kafka-libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(  # noqa: S603 - fixed argv: mvn and the repo's pom
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
        check=True,
    )
    staging.rename(libs)
    return libs


@dataclass
class LocalKafka:
    """Start with `start()`, stop with `stop()`; `bootstrap` is host:port for clients."""

    port: int = 0
    controller_port: int = 0
    data_dir: Path | None = None
    log_file: Path | None = None
    # A SASL_SSL listener beside the PLAINTEXT one: SCRAM users {name: password}, made at format.
    sasl_ssl_port: int = 0
    keystore: Path | None = None  # PKCS12 with the server certificate and key
    keystore_password: str = ""
    scram_users: dict[str, str] | None = None
    scram_mechanism: str = "SCRAM-SHA-512"
    _process: subprocess.Popen[bytes] | None = None
    _owned_dir: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self, data_dir: Path) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data_dir / "logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        if self.scram_users is not None:
            props.update(self._sasl_ssl_props())
        path = data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (data_dir / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        return path

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    def _sasl_ssl_props(self) -> dict[str, str]:
        listener = f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}"
        scram = f"listener.name.sasl_ssl.{self.scram_mechanism.lower()}"
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},{listener},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},{listener}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": self.scram_mechanism,
            f"{scram}.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.keystore_password,
            "ssl.key.password": self.keystore_password,
        }

    def _scram_args(self) -> list[str]:
        users = self.scram_users or {}
        return [a for u, p in users.items() for a in ("--add-scram", f"{self.scram_mechanism}=[name={u},password={p}]")]

    def _java(self, data_dir: Path, main: str, *args: str) -> list[str]:
        classpath = str(fetch_kafka_jars()) + "/*"
        return [
            "java",
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
            "-cp",
            classpath,
            main,
            *args,
        ]

    def start(self, timeout: float = 90.0, attempts: int = 3) -> LocalKafka:
        """Start on free ports; a port taken between choosing and binding gets a fresh pair."""
        pinned = bool(self.port and self.controller_port)
        for attempt in range(1, attempts + 1):
            if not pinned:
                self.port, self.controller_port, sasl_port = free_ports(3)
                self.sasl_ssl_port = sasl_port
            try:
                return self._start_once(timeout)
            except Exception:
                self._kill()
                if self._owned_dir and self.data_dir is not None:
                    shutil.rmtree(self.data_dir, ignore_errors=True)
                    self.data_dir, self._owned_dir = None, False
                if pinned or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _start_once(self, timeout: float) -> LocalKafka:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="sm-kafka-"))
            self._owned_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._config(self.data_dir)
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = str(uuid.uuid4().hex[:22])
            subprocess.run(  # noqa: S603 - fixed argv: java and our jars
                self._java(
                    self.data_dir,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                    "--ignore-formatted",
                    *self._scram_args(),
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        log_path = self.log_file or self.data_dir / "kafka.log"
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv: java and our jars
                self._java(self.data_dir, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, timeout, self._process)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """The port opens before the controller elects itself; wait for metadata to answer."""
        from stream_app.ingest.kafka_admin import ping

        deadline = time.monotonic() + timeout
        while True:
            try:
                ping(self.bootstrap)
                return
            except Exception:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"Kafka exited with {self._process.returncode} during start-up") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self, timeout: float = 30.0) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._owned_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
