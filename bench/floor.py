"""The latency floor: stockflow's I/O path with no processing, as a process to measure.

Consumes the input topics with the processor's consumer settings and, per batch of
whatever has arrived: one durable Postgres transaction (a COPY of the batch's event ids),
then one `stock.changed` per input and a `reservation.accepted` per order event, produced
with the processor's producer settings and flushed. No parsing beyond finding the id, no
rules, no state. Positions are committed to Kafka once a second (stockflow mirrors its own
as rarely: each commit is a write to the broker's offsets log).
"""

from __future__ import annotations

import signal
import threading
import time

import psycopg
from confluent_kafka import TopicPartition

from stockflow.adapters.kafka import consumer, producer, take_arrived
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import TopicKind, Topics

_ID = b'"id"'


def main() -> None:
    s = Settings()
    topics = Topics(s.topic_prefix)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cons, prod = consumer(s), producer(s)
    conn = psycopg.connect(s.dsn())
    table = f"{s.database_schema}.floor_ids"
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (event_id text)")
    conn.commit()
    changed = topics.name(TopicKind.STOCK_CHANGED)
    accepted, orders = topics.name(TopicKind.RESERVATIONS), topics.name(TopicKind.ORDERS)
    cons.subscribe(topics.inputs)
    positions: dict[tuple[str, int], int] = {}
    next_commit = time.monotonic() + 1
    while not stop.is_set():
        msgs = [m for m in take_arrived(cons, 10_000, 0.1) if m.error() is None]
        ids = [_event_id(m.value() or b"") for m in msgs]
        if msgs:
            with conn.cursor().copy(f"COPY {table} (event_id) FROM STDIN") as copy:
                for ident in ids:
                    copy.write_row((ident,))
            conn.commit()
        for m, ident in zip(msgs, ids, strict=True):
            body = b'{"type":"stock.changed","data":{"cause":{"event_id":"' + ident.encode() \
                + b'"}}}'
            prod.produce(changed, body, m.key())
            if m.topic() == orders:
                prod.produce(accepted, body.replace(b"stock.changed", b"reservation.accepted"),
                             m.key())
            positions[(m.topic() or "", m.partition() or 0)] = (m.offset() or 0) + 1
        prod.flush(30)
        if time.monotonic() >= next_commit and positions:
            cons.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                        asynchronous=True)
            next_commit = time.monotonic() + 1
    cons.close()


def _event_id(value: bytes) -> str:
    start = value.find(b'"', value.find(_ID) + len(_ID)) + 1
    return value[start:value.find(b'"', start)].decode("utf-8", "replace").replace("\0", "")


if __name__ == "__main__":
    main()
