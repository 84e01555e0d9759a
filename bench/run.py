"""stockflow benchmark: one command, prints figures.

    .venv/bin/python bench/run.py [--events 100000] [--rate 5000] [--seconds 20]

1. Throughput: a generated workload is published up front, then `stockflow process`
   (a child process) drains it end to end: consumed -> committed in Postgres -> outputs
   flushed to their topics. Measured from the first commit once the group is stable (every
   member owns partitions: joining is start-up, not throughput) to the last commit.
2. The same workload through a naive baseline (bench/naive.py: one transaction per event
   with SELECT ... FOR UPDATE, UPDATE, INSERT ledger row, produce, commit).
3. Latency: events offered at a fixed rate; each event's latency runs from its publish
   time to its stock.changed output being readable on the output topic.
Postgres runs with its durable defaults (fsync and synchronous_commit on).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from stockflow.adapters.db.migrate import migrate
from stockflow.adapters.kafka import admin, create_topics, produce_all, producer
from stockflow.contract.emit import Message
from stockflow.contract.topics import TopicKind, Topics
from stockflow.devtools.localenv import local_services
from stockflow.devtools.workload import Item, generate
from stockflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


def env_of(s: Settings) -> dict[str, str]:
    return {**os.environ, "STOCKFLOW_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "STOCKFLOW_DATABASE_URL": s.dsn(), "STOCKFLOW_TOPIC_PREFIX": s.topic_prefix,
            "STOCKFLOW_DATABASE_SCHEMA": s.database_schema, "STOCKFLOW_GROUP_ID": s.group_id,
            "STOCKFLOW_METRICS_PORT": "0", "STOCKFLOW_LOG_LEVEL": "WARNING"}


_CONNS: dict[str, psycopg.Connection[tuple[object, ...]]] = {}


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
        cons = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": s.group_id})
        meta = cons.list_topics(timeout=10)
        _READERS[s.group_id] = (cons, [TopicPartition(n, p) for n in topics.inputs
                                       for p in meta.topics[n].partitions])
    cons, tps = _READERS[s.group_id]
    return sum(max(tp.offset, 0) for tp in cons.committed(tps, timeout=10))


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
    cons = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-wm"})
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


def drain(cmd: list[str], s: Settings, topics: Topics, label: str,
          progress: Callable[[Settings, Topics], int] = committed,
          members: int = 1, steady: bool = True) -> Drained:
    """Run `members` copies of `cmd` in one group until every input offset is committed,
    polling what is committed. Without `steady`, the group's start-up is not waited out."""
    target = end_offsets(s, topics)
    client = admin(s)
    procs = [subprocess.Popen(cmd, env=env_of(s), stdout=subprocess.DEVNULL)
             for _ in range(members)]
    first_at = first_n = start_at = start_n = None
    last_n, last_at, last_print = 0, time.monotonic(), 0.0
    try:
        while True:
            n = progress(s, topics)
            now = time.monotonic()
            if n and start_at is None:
                start_at, start_n = now, n
            if n and first_at is None and (not steady or settled(client, s.group_id, members)):
                first_at, first_n = now, n
            if n != last_n:
                last_n, last_at = n, now
            if now - last_print > 2:
                say(f"  {label}: {n:,}/{target:,} committed")
                last_print = now
            if n >= target:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"{label} exited early")
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
    return Drained((last_n - first_n) / span, last_n - first_n, whole)


@dataclass(frozen=True)
class Drained:
    rate: float  # events/s from the first commit of the stable group to the last commit
    events: int  # events committed in that span
    whole: float  # events/s from the very first commit, group start-up included


def latency(base: Settings, partitions: int, rate: int, seconds: float,
            skus: int) -> list[float]:
    """Per-event latency at a fixed offered rate: publish time to stock.changed readable."""
    s = settings_for(base, "lat")
    topics = prepare(s, partitions)
    wl = generate(events=int(rate * seconds), skus=skus, warehouses=3, seed=5)
    publish(s, topics, wl.setup)
    proc = subprocess.Popen([sys.executable, "-m", "stockflow", "process"], env=env_of(s),
                            stdout=subprocess.DEVNULL)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    cons = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-lat",
                     "auto.offset.reset": "latest", "fetch.wait.max.ms": 5})
    cons.subscribe([topics.name(TopicKind.STOCK_CHANGED)])
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for m in cons.consume(500, 0.05):
                if m.error() is None:
                    at = time.time()
                    cause = json.loads(m.value() or b"{}")["data"]["cause"]["event_id"]
                    seen.setdefault(cause, at)

    try:
        while committed(s, topics) < len(wl.setup):
            time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(2)  # the watcher's consumer joins before measured traffic starts
        prod = producer(s, {"linger.ms": 1})
        start = time.monotonic()
        for i, it in enumerate(wl.stream):
            due = start + i / rate
            while (delay := due - time.monotonic()) > 0:
                time.sleep(min(delay, 0.002))
            if it.id:
                sent.setdefault(it.id, time.time())
            prod.produce(topics.name(it.kind), it.value, it.key)
            prod.poll(0)
        prod.flush(60)
        offered = len(wl.stream) / (time.monotonic() - start)
        say(f"  offered {offered:,.0f} events/s for {seconds:.0f}s")
        time.sleep(3)
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        cons.close()
    return [seen[i] - t for i, t in sent.items() if i in seen]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--naive-events", type=int, default=20_000,
                    help="events of the same workload the naive baseline drains")
    ap.add_argument("--members", type=int, default=os.cpu_count() or 1,
                    help="stockflow processes in the consumer group (default: one per core)")
    ap.add_argument("--repeat", type=int, default=3, help="measured stockflow drains")
    ap.add_argument("--warmup", type=int, default=20_000,
                    help="events drained before measuring (0: none)")
    ap.add_argument("--rate", type=int, default=5000, help="offered rate for latency")
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()

    with local_services() as found:
        base = Settings(kafka_bootstrap=found.kafka_bootstrap, database_url=found.database_url)
        durability = postgres_durability(base)
        wl = generate(events=args.events, skus=args.skus, warehouses=3, seed=3)
        say(f"workload: {len(wl.stream):,} events over {len(wl.keys):,} keys")

        if args.warmup:
            # A freshly started broker JVM spends much of its CPU compiling; measure the
            # steady state, as a long-running service would see it.
            w = settings_for(base, "warm")
            wtopics = prepare(w, args.partitions)
            warm = generate(events=args.warmup, skus=args.skus, warehouses=3, seed=99)
            publish(w, wtopics, warm.setup + warm.stream)
            say(f"warm-up: {args.warmup:,} events (not measured)")
            drain([sys.executable, "-m", "stockflow", "process"], w, wtopics, "warm-up",
                  members=args.members, steady=False)

        runs = []
        for rep in range(1, args.repeat + 1):
            s = settings_for(base, "sf")
            topics = prepare(s, args.partitions)
            publish(s, topics, wl.setup + wl.stream)
            say(f"stockflow: draining (run {rep} of {args.repeat})")
            runs.append(drain([sys.executable, "-m", "stockflow", "process"],
                              s, topics, "stockflow", members=args.members))
        sf_rate = statistics.median(r.rate for r in runs)

        n = settings_for(base, "naive")
        ntopics = prepare(n, args.partitions)
        subset = wl.setup + wl.stream[:args.naive_events]
        publish(n, ntopics, subset)
        say("naive baseline: draining")
        naive = drain([sys.executable, str(ROOT / "bench" / "naive.py")],
                                         n, ntopics, "naive", committed_in_kafka)

        say(f"latency: offering {args.rate}/s for {args.seconds:.0f}s")
        lat = latency(base, args.partitions, args.rate, args.seconds, args.skus)
        close_clients()  # before the services stop: no client left to retry them

    print("stockflow benchmark")
    print(f"  machine: {os.cpu_count()} cores; broker, Postgres and processor on it")
    print(f"  postgres: {durability} (durable defaults)")
    print(f"  workload: {len(wl.stream):,} events, {len(wl.keys):,} keys, "
          f"{args.partitions} partitions; {args.warmup:,}-event warm-up before measuring")
    print(f"  stockflow end to end:  {sf_rate:>10,.0f} events/s  median of {len(runs)} runs "
          f"({', '.join(f'{r.rate:,.0f}' for r in runs)}), {args.members} member(s); measured "
          f"from the group's first stable commit ({runs[0].events:,} events in run 1)")
    print(f"    with group start-up: {statistics.median(r.whole for r in runs):>10,.0f} events/s  "
          f"median ({', '.join(f'{r.whole:,.0f}' for r in runs)}), from the very first commit")
    print(f"  naive baseline:        {naive.rate:>10,.0f} events/s  ({naive.events:,} events)")
    print(f"  ratio:                 {sf_rate / max(naive.rate, 1e-9):>10.1f}x")
    if lat:
        print(f"  latency at {args.rate:,}/s offered, publish -> stock.changed readable "
              f"({len(lat):,} events): p50 {pct(lat, .5) * 1000:.0f} ms, "
              f"p95 {pct(lat, .95) * 1000:.0f} ms, p99 {pct(lat, .99) * 1000:.0f} ms, "
              f"mean {statistics.fmean(lat) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
