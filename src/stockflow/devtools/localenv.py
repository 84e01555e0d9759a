"""Local Kafka and Postgres for the main job and the test suite, started on free loopback ports.

Kafka is a pinned Apache Kafka release (KRaft, one node acting as broker and controller)
whose jars Maven resolves from Maven Central through `deploy/kafka/pom.xml`; PostgreSQL is
a fresh `initdb` cluster from the machine's PostgreSQL 15 binaries (installed from Debian's
`postgresql` package when missing). The jars are cached under `~/.cache/stockflow`; the
data of each run lives in a temporary folder that is removed when the services stop.
Postgres refuses to run as root, so as root the server runs as the `postgres` user.
`STOCKFLOW_KAFKA_BOOTSTRAP` / `STOCKFLOW_DATABASE_URL` skip starting the matching service.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stockflow import StockflowError
from stockflow.adapters.ports import free_port
from stockflow.devtools.cache import cache_dir, filled_once

__all__ = ["KAFKA_VERSION", "LocalServices", "ProvisionError", "Restartable", "free_port",
           "local_services", "main"]

KAFKA_VERSION = "4.3.1"
PG_MAJOR = "15"
_REPO = Path(__file__).resolve().parents[3]
_POM = _REPO / "deploy" / "kafka" / "pom.xml"
_LOG4J = _REPO / "deploy" / "kafka" / "log4j2.yaml"


class ProvisionError(StockflowError):
    """A local service could not be provisioned or did not come up."""


class Restartable:
    """A service started here, which outage tests can stop and start again (same port,
    same data)."""

    def __init__(self, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self.stop, self.start = stop, start


@dataclass(frozen=True)
class LocalServices:
    """Where Kafka and Postgres are, and how to stop and start each when started here."""

    kafka_bootstrap: str
    database_url: str
    kafka: Restartable | None = None  # None when configured from outside or in Docker
    postgres: Restartable | None = None


def _say(msg: str) -> None:
    print(f"[localenv] {msg}", file=sys.stderr, flush=True)


def _wait_port(port: int, deadline: float, alive: Callable[[], bool], what: str) -> None:
    while time.monotonic() < deadline:
        if not alive():
            raise ProvisionError(f"{what} exited while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise ProvisionError(f"{what} did not open port {port} in time")


# --- Kafka ---------------------------------------------------------------------------


def kafka_jars() -> Path:
    """The folder of the pinned broker's jars, resolved by Maven once and cached (safely
    when several commands start at once: see `stockflow.devtools.cache`)."""
    return filled_once(cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib", _resolve_kafka,
                       "resolving Apache Kafka", _say)


def _resolve_kafka(into: Path) -> None:
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise ProvisionError("Kafka needs Java 17+ and Maven on PATH (apt-get install maven)")
    _say(f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central (once, then cached)")
    cmd = [
        "mvn", "-q", "-B", "-f", str(_POM), "dependency:copy-dependencies",
        f"-Dkafka.version={KAFKA_VERSION}", f"-DoutputDirectory={into}", "-DincludeScope=runtime",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProvisionError(f"maven could not resolve Kafka:\n{done.stdout[-4000:]}{done.stderr}")


@contextlib.contextmanager
def kafka_broker(workdir: Path) -> Iterator[tuple[str, Restartable]]:
    """A single-node KRaft broker on free loopback ports; yields its bootstrap address."""
    lib = kafka_jars()
    port, controller = free_port(), free_port()
    data = workdir / "kafka-data"
    data.mkdir()
    props = workdir / "server.properties"
    props.write_text(
        "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.flush.interval.messages=9223372036854775807",
            "",
        ])
    )
    # Serial GC: on a 2-core machine G1's concurrent threads cost the broker ~20% more CPU
    # (measured: broker CPU seconds over the same drain), and a dev broker's heap is small.
    java = ["java", "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J}", "-cp", f"{lib}/*"]
    cluster_id = _cluster_id()
    fmt = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
        capture_output=True, text=True, check=False,
    )
    if fmt.returncode != 0:
        raise ProvisionError(f"kafka storage format failed: {fmt.stdout}{fmt.stderr}")
    log = (workdir / "kafka.log").open("ab")
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        _wait_port(port, time.monotonic() + 90, lambda: proc.poll() is None, "kafka")
        _wait_kafka_ready(f"127.0.0.1:{port}")

    def stop() -> None:
        _stop(procs[-1], 30)

    try:
        start()
        _say(f"kafka {KAFKA_VERSION} ready on 127.0.0.1:{port}")
        yield f"127.0.0.1:{port}", Restartable(stop, start)
    finally:
        stop()
        log.close()


def _cluster_id() -> str:
    # An id starting with "-" reads as an option to the storage tool (1 start in 64 failed
    # with its usage text); Kafka's own generator skips those ids for the same reason.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _wait_kafka_ready(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - only when provisioning

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while True:
        try:
            meta = admin.list_topics(timeout=5)
            if meta.brokers:
                return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise ProvisionError(f"kafka never answered metadata: {exc}") from exc
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- PostgreSQL ----------------------------------------------------------------------


def pg_bindir() -> Path:
    """The PostgreSQL 15 binaries, installing Debian's package when they are missing."""
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    for cand in candidates:
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    if os.geteuid() != 0:
        raise ProvisionError(
            f"PostgreSQL {PG_MAJOR} binaries not found; install Debian's postgresql-{PG_MAJOR}"
        )
    _say(f"installing postgresql-{PG_MAJOR} from Debian (once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", f"postgresql-{PG_MAJOR}"]
    for cmd in (["apt-get", "update", "-q"], install):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise ProvisionError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return candidates[0]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, or as root an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        return pwd.getpwnam("postgres")


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[tuple[str, Restartable]]:
    """A throwaway PostgreSQL 15 cluster with durable defaults; yields its URL."""
    bindir = pg_bindir()
    user = _server_user()
    pgdir = workdir / "pg"
    pgdir.mkdir()
    data, sock = pgdir / "data", pgdir / "sock"
    sock.mkdir()

    def as_server(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        if user is not None:
            cmd = ["runuser", "-u", user.pw_name, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]

    if user is not None:
        # The server user must reach its data through every parent folder.
        for part in [workdir, *workdir.parents]:
            if part == Path("/"):
                break
            with contextlib.suppress(OSError):
                part.chmod(part.stat().st_mode | 0o011)
        shutil.chown(pgdir, user.pw_uid, user.pw_gid)
        shutil.chown(sock, user.pw_uid, user.pw_gid)
    init = as_server([str(bindir / "initdb"), "-D", str(data), "-U", "stockflow",
                      "-A", "trust", "-E", "UTF8", "--no-locale"])
    if init.returncode != 0:
        raise ProvisionError(f"initdb failed: {init.stdout}{init.stderr}")
    port = free_port()
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=100 "
            "-c shared_buffers=256MB -c max_wal_size=2GB")
    if (bindir.parent / "lib" / "pg_stat_statements.so").exists():
        # for the benchmarks' statements per event (bench/common.py, `pg_counters`)
        opts += " -c shared_preload_libraries=pg_stat_statements"

    def start() -> None:
        done = as_server([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(pgdir / "log"),
                          "-o", opts, "-w", "-t", "60", "start"])
        if done.returncode != 0:
            raise ProvisionError(f"postgres did not start: {done.stdout}{done.stderr}")

    def stop() -> None:
        as_server([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])

    start()
    try:
        created = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "stockflow",
             "stockflow"], capture_output=True, text=True, check=False,
        )
        if created.returncode != 0:
            raise ProvisionError(f"createdb failed: {created.stderr}")
        _say(f"postgres {PG_MAJOR} ready on 127.0.0.1:{port}")
        yield f"postgresql://stockflow@127.0.0.1:{port}/stockflow", Restartable(stop, start)
    finally:
        stop()


# --- Docker --------------------------------------------------------------------------


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return probe.returncode == 0


@contextlib.contextmanager
def _containers(need_kafka: bool, need_pg: bool) -> Iterator[tuple[str | None, str | None]]:
    from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]  # noqa: PLC0415
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        kafka = pg = None
        if need_kafka:
            k = stack.enter_context(KafkaContainer(f"apache/kafka:{KAFKA_VERSION}").with_kraft())
            kafka = k.get_bootstrap_server()
        if need_pg:
            p = stack.enter_context(PostgresContainer(f"postgres:{PG_MAJOR}", driver=None))
            pg = p.get_connection_url()
        yield kafka, pg


# --- both ----------------------------------------------------------------------------


@contextlib.contextmanager
def local_services(kafka: bool = True, postgres: bool = True) -> Iterator[LocalServices]:
    """Kafka and Postgres for this process: configured, from Docker, or started here."""
    kafka_url = os.environ.get("STOCKFLOW_KAFKA_BOOTSTRAP") if kafka else ""
    pg_url = os.environ.get("STOCKFLOW_DATABASE_URL") if postgres else ""
    need_kafka, need_pg = kafka_url is None, pg_url is None
    with contextlib.ExitStack() as stack:
        if (need_kafka or need_pg) and os.environ.get("STOCKFLOW_NO_DOCKER") != "1" \
                and docker_available():
            _say("docker answers: using testcontainers")
            k, p = stack.enter_context(_containers(need_kafka, need_pg))
            kafka_url, pg_url = k or kafka_url, p or pg_url
            need_kafka = need_pg = False
        kafka_ctl = pg_ctl = None
        if need_kafka or need_pg:
            workdir = Path(tempfile.mkdtemp(prefix="stockflow-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            if need_kafka:
                kafka_url, kafka_ctl = stack.enter_context(kafka_broker(workdir))
            if need_pg:
                pg_url, pg_ctl = stack.enter_context(postgres_server(workdir))
        yield LocalServices(kafka_url or "", pg_url or "", kafka_ctl, pg_ctl)


def main() -> int:
    """`python -m stockflow.devtools.localenv`: start the services, print the variables
    that point at them (`NAME=value` lines, for `set -a; . FILE`), and keep them until
    SIGTERM or SIGINT. The suite's parallel tier shares one Kafka and one Postgres this
    way (scripts/test)."""
    from stockflow.adapters.signals import stop_on_signals  # noqa: PLC0415

    with stop_on_signals() as stop, local_services() as found:
        print(f"STOCKFLOW_KAFKA_BOOTSTRAP={found.kafka_bootstrap}\n"
              f"STOCKFLOW_DATABASE_URL={found.database_url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
