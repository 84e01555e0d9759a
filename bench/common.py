"""What the benchmark's parts share: fresh topics and schemas per run, publishing a
workload, running processes over it and watching their progress."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

from stockflow.adapters.db.migrate import migrate
from stockflow.adapters.db.store import Conn
from stockflow.adapters.kafka import admin, create_topics, produce_all, producer
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message
from stockflow.contract.topics import Topics
from stockflow.devtools.workload import Item

ROOT = Path(__file__).resolve().parents[1]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


_LOG: list[IO[bytes]] = []  # where children write their stderr, once `log_to` is called


def log_to(path: Path) -> None:
    """From now on, what is logged rather than reported goes to `path`, not the terminal:
    this driver's Python logging (its stockflow clients tell librdkafka's lines through
    it), the lines of its own Kafka clients (`kafka_config`), and the stderr of every
    child it starts (`spawn`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _LOG.append(path.open("ab", buffering=0))  # appends: the children's and ours interleave
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def kafka_config(**conf: Any) -> dict[str, Any]:
    """A confluent-kafka client's settings, with its librdkafka lines told through Python
    logging (librdkafka writes them to stderr by default)."""
    return {**conf, "logger": logging.getLogger("bench.librdkafka")}


def spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`cmd` with `env`, its output dropped and its stderr in the log (see `log_to`)."""
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=_LOG[-1] if _LOG else None)


def settings_for(base: Settings, name: str) -> Settings:
    tag = f"{name}{uuid.uuid4().hex[:6]}"
    return base.model_copy(update={"topic_prefix": f"{tag}.", "database_schema": tag,
                                   "group_id": tag, "metrics_port": 0})


def prepare(s: Settings, partitions: int) -> Topics:
    topics = Topics(s.topic_prefix)
    create_topics(admin(s), topics.all, partitions, 1)
    migrate(s.dsn(), s.database_schema)
    return topics


def publish(s: Settings, topics: Topics, items: list[Item]) -> None:
    prod = producer(s, {"linger.ms": 20})
    produce_all(prod, (Message(topics.name(it.kind), it.key, it.value) for it in items))
    assert prod.flush(120) == 0


def env_of(s: Settings, **extra: str) -> dict[str, str]:
    """The environment of a processor (or baseline, or peer) working on `s`."""
    return {**os.environ, **s.environment(), "STOCKFLOW_METRICS_PORT": "0",
            "STOCKFLOW_LOG_LEVEL": "WARNING", **extra}


def start(s: Settings, command: str, **extra: str) -> subprocess.Popen[bytes]:
    """`stockflow COMMAND` on `s`, its output dropped (`extra`: more of its environment)."""
    return spawn([sys.executable, "-m", "stockflow", command], env_of(s, **extra))


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Until `url` answers (a process's readiness), or exit when `proc` ends or 60 s pass."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process for {url} exited")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our child, on loopback
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 60 s")


_CONNS: dict[str, Conn] = {}


def committed(s: Settings, topics: Topics) -> int:
    """Offsets stockflow committed in Postgres (one reused connection: a new connection per
    poll would fork a backend each time and steal CPU from what is measured)."""
    conn = _CONNS.get(s.dsn())
    if conn is None:
        conn = _CONNS[s.dsn()] = psycopg.connect(s.dsn(), autocommit=True)
    row = conn.execute(
        f"SELECT coalesce(sum(next_offset), 0) FROM {s.database_schema}.consumer_offsets"
        " WHERE group_id = %s AND topic = ANY(%s)", (s.group_id, topics.inputs)).fetchone()
    return int(row[0]) if row else 0


_READERS: dict[str, tuple[Consumer, list[TopicPartition]]] = {}


def committed_in_kafka(s: Settings, topics: Topics) -> int:
    """The naive baseline keeps its offsets in Kafka, as such services do (one reused
    client, for the same reason as `committed`)."""
    if s.group_id not in _READERS:
        cons = Consumer(kafka_config(**{"bootstrap.servers": s.kafka_bootstrap,
                                        "group.id": s.group_id}))
        meta = cons.list_topics(timeout=10)
        _READERS[s.group_id] = (cons, [TopicPartition(n, p) for n in topics.inputs
                                       for p in meta.topics[n].partitions])
    cons, tps = _READERS[s.group_id]
    return sum(max(tp.offset, 0) for tp in cons.committed(tps, timeout=10))


_OWN_QUERIES = ("SELECT coalesce(sum(next_offset)%", "%pg_stat_%", "%pg_current_wal_lsn%")


def pg_counters(s: Settings) -> dict[str, float]:
    """Postgres's running totals, to take two and subtract: WAL bytes written, transactions
    committed, rows inserted, updated and deleted, and statements executed (from
    pg_stat_statements, when the server loads it: the local one does) other than this
    driver's own polls. Totals of the whole server: measure with nothing else running."""
    with psycopg.connect(s.dsn(), autocommit=True) as conn:
        wal, commits, rows = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), sum(xact_commit),"
            " sum(tup_inserted + tup_updated + tup_deleted) FROM pg_stat_database").fetchone() \
            or (0, 0, 0)
        got = {"wal_bytes": float(wal), "commits": float(commits), "rows": float(rows)}
        loaded = conn.execute("SELECT 'pg_stat_statements' = ANY(string_to_array("
                              "current_setting('shared_preload_libraries'), ', '))").fetchone()
        if loaded and loaded[0]:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            row = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE "
                               "NOT query LIKE ANY(%s)", (list(_OWN_QUERIES),)).fetchone()
            got["statements"] = float(row[0]) if row else 0.0
    return got


def per_event(before: dict[str, float], after: dict[str, float], events: int) -> str:
    """What Postgres did per event between two `pg_counters`, as one line."""
    d = {k: (after[k] - before[k]) / max(events, 1) for k in after if k in before}
    statements = f"{d['statements']:.3f} statements, " if "statements" in d else ""
    return (f"Postgres per event: {d['wal_bytes']:,.0f} WAL bytes, {statements}"
            f"{d['rows']:.2f} rows written, {d['commits']:.3f} commits")


def postgres_durability(s: Settings) -> str:
    with psycopg.connect(s.dsn()) as conn:
        shown = [(name, conn.execute(f"SHOW {name}").fetchone())
                 for name in ("fsync", "synchronous_commit")]
    return " ".join(f"{name}={row[0] if row else '?'}" for name, row in shown)


def close_clients() -> None:
    for cons, _ in _READERS.values():
        cons.close()
    for conn in _CONNS.values():
        conn.close()
    _READERS.clear()
    _CONNS.clear()


def end_offsets(s: Settings, topics: Topics) -> int:
    cons = Consumer(kafka_config(**{"bootstrap.servers": s.kafka_bootstrap,
                                    "group.id": "bench-wm"}))
    meta = cons.list_topics(timeout=10)
    total = 0
    for name in topics.inputs:
        for p in meta.topics[name].partitions:
            total += cons.get_watermark_offsets(TopicPartition(name, p), 10)[1]
    cons.close()
    return total


def settled(client: AdminClient, group: str, members: int) -> bool:
    """Whether the group is stable with `members` members that all own partitions. Members
    started together join one after another (the local broker has no initial rebalance
    delay), and the rebalance that follows is start-up, not throughput."""
    desc = client.describe_consumer_groups([group])[group].result(10)
    return (desc.state == ConsumerGroupState.STABLE and len(desc.members) == members
            and all(m.assignment.topic_partitions for m in desc.members))


STALLED = 60.0  # seconds without progress after which a drain gives up


def drain(cmd: list[str], s: Settings, topics: Topics, label: str,
          progress: Callable[[Settings, Topics], int] = committed,
          members: int = 1, extra_env: dict[str, str] | None = None) -> Drained:
    """Run `members` copies of `cmd` in one group until every input offset is committed,
    polling what is committed; gives up after `STALLED` seconds without progress."""
    target = end_offsets(s, topics)
    client = admin(s)
    procs = [spawn(cmd, env_of(s, **(extra_env or {}))) for _ in range(members)]
    first_at = first_n = start_at = start_n = None
    last_n, last_at, last_print = 0, time.monotonic(), 0.0
    try:
        while True:
            n = progress(s, topics)
            now = time.monotonic()
            if n and start_at is None:
                start_at, start_n = now, n
            if n and first_at is None and settled(client, s.group_id, members):
                first_at, first_n = now, n
                cpu0, pg0 = cpu_seconds(), pg_counters(s)  # start-up's CPU left out
            if n != last_n:
                last_n, last_at = n, now
            if now - last_print > 2:
                say(f"  {label}: {n:,}/{target:,} committed")
                last_print = now
            if n >= target:
                cpu1, pg1 = cpu_seconds(), pg_counters(s)
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"{label} exited early")
            if now - last_at > STALLED:
                raise SystemExit(f"{label}: no progress for {STALLED:.0f}s at {n:,}/{target:,}")
            time.sleep(0.1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
    if first_at is None or first_n is None or last_n <= first_n:
        raise SystemExit(f"{label}: the group was not stable before the drain ended; "
                         "use more --events")
    assert start_at is not None
    assert start_n is not None
    span = max(last_at - first_at, 1e-9)
    whole = (last_n - start_n) / max(last_at - start_at, 1e-9)
    events = last_n - first_n
    return Drained((last_n - first_n) / span, events, whole,
                   {role: (cpu1[role] - cpu0[role]) / events * 1e6 for role in cpu1},
                   per_event(pg0, pg1, events))


@dataclass(frozen=True)
class Drained:
    rate: float  # events/s from the first commit of the stable group to the last commit
    events: int  # events committed in that span
    whole: float  # events/s from the very first commit, group start-up included
    cpu: dict[str, float]  # role: CPU us per event in that span
    postgres: str  # what Postgres did per event in that span (`per_event`)


def cpu_line(cpu: dict[str, float]) -> str:
    """CPU us per event by role, the roles that used any."""
    return "CPU per event, us: " + "  ".join(f"{role} {us:,.0f}" for role, us in cpu.items()
                                             if us > 0.5)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]




_ROLES = (("broker", "kafka.Kafka"), ("postgres", "postgres"), ("processor", "stockflow process"),
          ("floor", "bench/floor.py"), ("peer", "peer_faust"), ("naive", "naive.py"),
          ("api", "stockflow api"))
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each role on this machine (broker, Postgres, processors,
    peer, naive baseline, this driver), from /proc: take two and subtract."""
    used: dict[str, float] = dict.fromkeys([r for r, _ in _ROLES] + ["driver"], 0.0)
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        role = "driver" if int(proc.name) == me else next(
            (r for r, marker in _ROLES if marker in cmd), None)
        if role is not None:
            used[role] += (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    return used
