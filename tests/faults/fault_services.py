"""Throwaway services that a fault test may stop and start: never the shared ones.

Started the way `deploy/services.sh` starts the shared PostgreSQL (Debian's binaries,
run as the `postgres` user when the tests run as root) and Kafka (the Maven jars it
caches in `.cache/kafka/libs`), but on free ports and in their own data folders, so a
test can stop them mid-stream and start them again on the same data.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LIBS = ROOT / ".cache" / "kafka" / "libs"

__all__ = [
    "KAFKA_LIBS",
    "ThrowawayKafka",
    "ThrowawayPostgres",
    "free_port",
    "postgres_binaries",
    "throwaway_postgres",
]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as `postgres` then (as services.sh does)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own, on a free port, that a test may stop and restart."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        # Under /var/tmp, not pytest's tmp_path: as root, the postgres user cannot enter
        # /tmp/pytest-of-root (mode 700).
        self.home = Path(tempfile.mkdtemp(prefix="inferloop-fault-pg-", dir="/var/tmp"))
        self.data = self.home / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
                + ["--no-sync"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        subprocess.run(
            _as_postgres_user(
                [str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.home / "log")]
                + ["-w", "-t", "120", "-o", options, "start"]
            ),
            check=True,
            capture_output=True,
            timeout=150,
        )

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back, clients are disconnected."""
        subprocess.run(
            _as_postgres_user(
                [str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
                + ["-t", "120"]
            ),
            check=True,
            capture_output=True,
            timeout=150,
        )

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class ThrowawayKafka:
    """A single-node KRaft broker of its own (services.sh's settings, other ports).

    `stop()` is a clean SIGTERM shutdown and `start()` runs the broker again on the same
    log directory, so the topic and the consumer group's offsets survive the restart.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.controller_port = free_port()
        self._process: subprocess.Popen | None = None
        self._log = None
        (home / "data").mkdir(parents=True)
        (home / "logs").mkdir()
        self.properties = home / "server.properties"
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={home / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "message.max.bytes=10485760",
                    "",
                ]
            )
        )
        (home / "log4j2.properties").write_text(
            "status = warn\nappender.file.type = File\nappender.file.name = file\n"
            "appender.file.fileName = ${sys:kafka.logs.dir}/server.log\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\nrootLogger.appenderRef.file.ref = file\n"
        )
        classpath = f"{KAFKA_LIBS}/*"
        subprocess.run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "format"]
            + ["-t", uuid.uuid4().hex[:22], "-c", str(self.properties), "--standalone"],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Start the broker; return once its client port is open (open = unfenced)."""
        self._log = open(self.home / "logs" / "stdout.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            ["java", "-Xms256m", "-Xmx256m", "-XX:+UseG1GC"]
            + [f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}"]
            + [f"-Dkafka.logs.dir={self.home / 'logs'}", "-cp", f"{KAFKA_LIBS}/*"]
            + ["kafka.Kafka", str(self.properties)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        process = self._process

        def ready() -> bool:
            assert process.poll() is None, "the throwaway broker exited while starting"
            return _port_open(self.port)

        wait_for(ready, timeout, "the throwaway broker's port")

    def stop(self, timeout: float = 60.0) -> None:
        """A clean shutdown (SIGTERM), as an operator's restart would do."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(30)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        wait_for(lambda: not _port_open(self.port), 30, "the broker's port to close")

    def remove(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(30)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started throwaway cluster, removed at the end (the caller checks binaries)."""
    bin_dir = postgres_binaries()
    assert bin_dir is not None
    cluster = ThrowawayPostgres(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
