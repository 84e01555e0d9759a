"""The I/O ceiling on this machine: what moving stockflow's bytes costs with no processing.

Kafka: the same input messages consumed in batches and produced again, unchanged, by a
producer configured as stockflow's (idempotent, acks=all), flushed per batch.
Postgres: the rows a stockflow drain wrote (ledger, processed events, reservations,
stock) COPYed into a fresh schema, one transaction per 10,000 rows of a table.
"""

from __future__ import annotations

import io
import time
from typing import NamedTuple

import psycopg
from common import cpu_seconds, kafka_config, per_event, pg_counters, say, settings_for
from confluent_kafka import Consumer

from stockflow.adapters.db.migrate import migrate
from stockflow.adapters.kafka import admin, create_topics, produce_all, producer
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message
from stockflow.contract.topics import Topics

TABLES = ("ledger", "processed_events", "reservations", "stock")
_CHUNK = 10_000


class Ceiling(NamedTuple):
    rate: float  # events/s
    cpu: dict[str, float]  # role: CPU us per event while moving them
    postgres: str  # what Postgres did per event (`common.per_event`), for the COPY


def _cpu(before: dict[str, float], events: int) -> dict[str, float]:
    after = cpu_seconds()
    return {role: (after[role] - before[role]) / max(events, 1) * 1e6 for role in after}


def kafka(base: Settings, source: Settings, topics: Topics, total: int) -> Ceiling:
    """Consuming `total` messages of `topics`' inputs and producing each again."""
    s = settings_for(base, "ceil")
    sink = Topics(s.topic_prefix)
    create_topics(admin(s), [sink.inputs[0]], 6, 1)
    cons = Consumer(kafka_config(**{
        "bootstrap.servers": source.kafka_bootstrap, "group.id": s.group_id,
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "fetch.min.bytes": 1}))
    prod = producer(s)
    cons.subscribe(topics.inputs)
    seen, start = 0, None
    try:
        while seen < total:
            msgs = [m for m in cons.consume(10_000, 1.0) if m.error() is None]
            if not msgs:
                continue
            if start is None:
                start, cpu0 = time.monotonic(), cpu_seconds()
            produce_all(prod, (Message(sink.inputs[0], m.key(), m.value() or b"", ())
                               for m in msgs))
            prod.flush(30)
            seen += len(msgs)
        return Ceiling(seen / max(time.monotonic() - (start or time.monotonic()), 1e-9),
                       _cpu(cpu0, seen), "")
    finally:
        cons.close()


def postgres(base: Settings, drained: Settings, events: int) -> Ceiling:
    """COPYing the rows that draining `events` events wrote into a fresh schema."""
    target = settings_for(base, "ceilpg")
    migrate(target.dsn(), target.database_schema)
    dumps: dict[str, list[bytes]] = {}
    with psycopg.connect(drained.dsn(), autocommit=True) as conn:
        for table in TABLES:
            buf = io.BytesIO()
            with conn.cursor().copy(f"COPY {drained.database_schema}.{table} TO STDOUT") as cp:
                for chunk in cp:
                    buf.write(chunk)
            lines = buf.getvalue().splitlines(keepends=True)
            dumps[table] = [b"".join(lines[i:i + _CHUNK]) for i in range(0, len(lines), _CHUNK)]
    say(f"  postgres ceiling: COPYing {sum(len(v) for v in dumps.values())} chunks of up to "
        f"{_CHUNK:,} rows")
    with psycopg.connect(target.dsn(), autocommit=True) as conn:
        cpu0, pg0 = cpu_seconds(), pg_counters(target)
        start = time.monotonic()
        for table, chunks in dumps.items():
            for chunk in chunks:
                with conn.transaction(), conn.cursor().copy(
                        f"COPY {target.database_schema}.{table} FROM STDIN") as cp:
                    cp.write(chunk)
        spent = time.monotonic() - start
        # taken while the connection's backend still lives: its CPU leaves /proc with it
        used, pg1 = _cpu(cpu0, events), pg_counters(target)
    return Ceiling(events / max(spent, 1e-9), used, per_event(pg0, pg1, events))
