"""Helpers for tests that run the processor against the session's real Kafka and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import SecretStr

from stockflow.adapters.db.migrate import migrate
from stockflow.adapters.kafka import (
    admin,
    create_topics,
    headers_of,
    partition_counts,
    produce_all,
    producer,
)
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message
from stockflow.contract.topics import INPUTS, TopicKind, Topics
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item
from stockflow.engine.host import Host
from stockflow.entrypoints.app import build_processor


@dataclass(frozen=True)
class Env:
    settings: Settings
    topics: Topics

    @property
    def env_vars(self) -> dict[str, str]:
        """The environment of a `stockflow` child working on these settings."""
        return {**self.settings.environment(), "STOCKFLOW_METRICS_PORT": "0",
                "STOCKFLOW_COORDINATOR_METRICS_PORT": "0"}

    def db(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.settings.dsn(), autocommit=True)
        conn.execute(f"SET search_path TO {self.settings.database_schema}")
        return conn


def make_env(services: LocalServices, unique: str, partitions: int = 3,
             migrate_upto: int | None = None, **kw: object) -> Env:
    settings = Settings(kafka_bootstrap=services.kafka_bootstrap,
                        database_url=SecretStr(services.database_url),
                        topic_prefix=f"t{unique}.",
                        database_schema=f"s{unique}", group_id=f"g{unique}", metrics_port=0,
                        coordinator_group_id=f"c{unique}", coordinator_metrics_port=0,
                        session_timeout_ms=6000, sweep_interval=1.0, **kw)  # type: ignore[arg-type]
    topics = Topics(settings.topic_prefix)
    create_topics(admin(settings), topics.all, partitions, 1)
    migrate(settings.dsn(), settings.database_schema, migrate_upto)
    return Env(settings, topics)


def refuse_writes_of(env: Env, event_ids: Iterable[str]) -> None:
    """Make Postgres refuse to record these events, with a data error raised by a trigger:
    a batch write that fails on one event, whatever the cause."""
    with env.db() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS refused (event_id text PRIMARY KEY)")
        conn.execute("""CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN
                IF EXISTS (SELECT 1 FROM refused r WHERE r.event_id = NEW.event_id) THEN
                    RAISE EXCEPTION 'refused %', NEW.event_id USING ERRCODE = '22023';
                END IF;
                RETURN NEW;
            END $$""")
        conn.execute("CREATE OR REPLACE TRIGGER refuse BEFORE INSERT ON processed_events"
                     " FOR EACH ROW EXECUTE FUNCTION refuse()")
        for ident in event_ids:
            conn.execute("INSERT INTO refused VALUES (%s) ON CONFLICT DO NOTHING", (ident,))


def publish(env: Env, items: Iterable[Item]) -> int:
    prod = producer(env.settings)
    n = produce_all(prod, (Message(env.topics.name(it.kind), it.key, it.value) for it in items))
    assert prod.flush(60) == 0
    return n


@dataclass
class Running:
    processor: Host
    failure: list[BaseException]

    def check(self) -> None:
        if self.failure:
            raise AssertionError("the processor thread died") from self.failure[0]


_RUNNING: list[Running] = []


@contextmanager
def processor_thread(env: Env, build: Callable[[Settings], Host] = build_processor,
                     ) -> Iterator[Running]:
    """A host (the stock processor, or what `build` wires) running in a thread."""
    running = Running(build(env.settings), [])
    stop = threading.Event()

    def target() -> None:
        try:
            running.processor.run(stop)
        except BaseException as exc:  # noqa: BLE001 - surfaced in the test thread by check()
            running.failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    _RUNNING.append(running)
    try:
        yield running
    finally:
        _RUNNING.remove(running)
        stop.set()
        thread.join(60)
        running.processor.close()
    running.check()


def spawn(env: Env, instance: str | None = None,
          extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`stockflow process` as a child; its log goes to a temporary file (see `log_of`)."""
    vars_ = {**os.environ, **env.env_vars, "STOCKFLOW_LOG_LEVEL": "WARNING", **(extra or {})}
    if instance:
        vars_["STOCKFLOW_GROUP_INSTANCE_ID"] = instance
    return start_logged("process", vars_)


def start_logged(command: str, env: dict[str, str], *,
                 with_stdout: bool = False) -> subprocess.Popen[bytes]:
    """`stockflow COMMAND` as a child, its log in a file of its own (see `log_of`);
    `with_stdout`: its standard output too, in the same file."""
    log = tempfile.NamedTemporaryFile(dir=LOG_DIR, prefix=f"{command}-", suffix=".log",  # noqa: SIM115 - outlives this call
                                      delete=False)
    # its temporary folders too (a relay killed with SIGKILL leaves its data folder)
    tmp = {"TMPDIR": str(LOG_DIR)} if LOG_DIR else {}
    proc = subprocess.Popen([sys.executable, "-m", "stockflow", command], env=env | tmp,
                            stdout=log if with_stdout else subprocess.DEVNULL, stderr=log)
    _LOGS[proc.pid] = log.name
    return proc


_LOGS: dict[int, str] = {}
# Set for the session (conftest), under pytest's basetemp: pytest keeps the last three
# sessions' folders and removes older ones, so child logs and temporary folders do not
# pile up in /tmp.
LOG_DIR: Path | None = None


def ready(port: int) -> bool:
    """Whether the service whose metrics server is on `port` answers /readyz with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def log_of(proc: subprocess.Popen[bytes], tail: int | None = 4000) -> str:
    """The end (`tail` characters; None: all) of a child's log from `start_logged`."""
    text = Path(_LOGS[proc.pid]).read_text(errors="replace")
    return text if tail is None else text[-tail:]


def high_watermarks(env: Env, kinds: Iterable[TopicKind]) -> dict[tuple[str, int], int]:
    cons = Consumer({"bootstrap.servers": env.settings.kafka_bootstrap, "group.id": "wm"})
    names = [env.topics.name(k) for k in kinds]
    counts = partition_counts(admin(env.settings), names)
    marks = {}
    for name in names:
        for p in range(counts[name] or 0):
            marks[(name, p)] = _end(cons, TopicPartition(name, p))
    cons.close()
    return marks


def _end(cons: Consumer, tp: TopicPartition) -> int:
    deadline = time.monotonic() + 30
    while True:
        try:
            return int(cons.get_watermark_offsets(tp, 10)[1])
        except KafkaException as exc:
            # a busy fresh broker may answer "not leader" for a partition made moments ago
            if exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_drained(env: Env, timeout: float = 240, alive: list[subprocess.Popen[bytes]] | None
                 = None) -> None:
    """Until every input partition is committed in Postgres up to its end and the outbox is
    empty, twice in a row (the processor itself writes transfer.incoming and expiries)."""
    deadline = time.monotonic() + timeout
    stable = 0
    with env.db() as conn:
        while time.monotonic() < deadline:
            for p in alive or []:
                assert p.poll() is None, log_of(p)
            for running in _RUNNING:
                running.check()
            marks = high_watermarks(env, INPUTS)
            rows = conn.execute("SELECT topic, partition, next_offset FROM consumer_offsets"
                                " WHERE group_id = %s", (env.settings.group_id,)).fetchall()
            done = {(str(t), int(p)): int(n) for t, p, n in rows}  # type: ignore[call-overload]
            behind = [tp for tp, hw in marks.items() if hw > 0 and done.get(tp, 0) < hw]
            outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()
            if not behind and outbox == (0,):
                stable += 1
                if stable >= 3:
                    return
            else:
                stable = 0
            time.sleep(0.5)
    raise AssertionError(f"not drained in {timeout}s: behind={behind} outbox={outbox}")


def read_topic(env: Env, kind: TopicKind) -> list[tuple[bytes | None, bytes | None,
                                                         dict[str, bytes]]]:
    """Every message on `kind`'s topic, partition by partition in offset order."""
    name = env.topics.name(kind)
    marks = high_watermarks(env, [kind])
    cons = Consumer({"bootstrap.servers": env.settings.kafka_bootstrap, "group.id": "reader",
                     "enable.auto.commit": False})
    out: list[tuple[bytes | None, bytes | None, dict[str, bytes]]] = []
    for (_, part), hw in sorted(marks.items()):
        if hw == 0:
            continue
        cons.assign([TopicPartition(name, part, 0)])
        got = 0
        deadline = time.monotonic() + 60
        while got < hw and time.monotonic() < deadline:
            out.extend((m.key(), m.value(), dict(headers_of(m.headers() or [])))
                       for m in cons.consume(1000, 1.0) if m.error() is None)
            # the position steps over transaction markers, which carry no message
            got = cons.position([TopicPartition(name, part)])[0].offset
        assert got >= hw, f"read {got} of {hw} on {name}/{part}"
    cons.close()
    return out


def db_quantities(env: Env) -> dict[str, tuple[int, int, int, int]]:
    with env.db() as conn:
        rows = conn.execute("SELECT key, on_hand, reserved, in_transit, damaged FROM stock")
        return {str(k): (int(a), int(b), int(c), int(d))  # type: ignore[call-overload]
                for k, a, b, c, d in rows.fetchall()}
