"""The naive baseline: a classic inventory consumer, one Postgres transaction per event.

Per message: parse, BEGIN, SELECT ... FOR UPDATE the stock row, record the event id,
UPDATE the row, INSERT a ledger row, produce stock.changed, COMMIT, store the offset.
It applies only the quantity effect of each type (no reservations table, no alerts):
it exists to measure the cost of the per-event round-trip pattern, not to be correct.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import psycopg
from confluent_kafka import Consumer, Producer

from stockflow.contract.topics import TopicKind, Topics

EFFECT = {  # type -> (on_hand sign, reserved sign, in_transit sign, damaged sign)
    "receipt.received": (1, 0, 0, 0), "transfer.received": (1, 0, 0, 0),
    "shipment.dispatched": (-1, 0, 0, 0), "transfer.dispatched": (-1, 0, 0, 0),
    "order.placed": (0, 1, 0, 0), "transfer.incoming": (0, 0, 1, 0),
    "stock.damaged": (-1, 0, 0, 1), "return.received": (1, 0, 0, 0),
}


def main() -> None:
    env = os.environ
    topics = Topics(env["STOCKFLOW_TOPIC_PREFIX"])
    schema = env["STOCKFLOW_DATABASE_SCHEMA"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = Consumer({"bootstrap.servers": env["STOCKFLOW_KAFKA_BOOTSTRAP"],
                         "group.id": env["STOCKFLOW_GROUP_ID"], "auto.offset.reset": "earliest",
                         "enable.auto.offset.store": False, "auto.commit.interval.ms": 200})
    producer = Producer({"bootstrap.servers": env["STOCKFLOW_KAFKA_BOOTSTRAP"],
                         "enable.idempotence": True, "linger.ms": 5})
    conn = psycopg.connect(env["STOCKFLOW_DATABASE_URL"])
    conn.execute(f"SET search_path TO {schema}")
    conn.commit()
    out = topics.name(TopicKind.STOCK_CHANGED)
    consumer.subscribe(topics.inputs)
    while not stop.is_set():
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        try:
            doc = json.loads(msg.value() or b"")
            data, kind = doc["data"], doc["type"]
            key = (msg.key() or b"").decode()
            sku, _, wh = key.partition("@")
            q = int(data.get("quantity") or data.get("delta") or 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            consumer.store_offsets(msg)
            continue
        signs = EFFECT.get(kind, (0, 0, 0, 0))
        with conn.transaction():
            row = conn.execute("SELECT on_hand, reserved, in_transit, damaged, version FROM stock"
                               " WHERE key = %s FOR UPDATE", (key,)).fetchone()
            row = row or (0, 0, 0, 0, 0)
            fresh = conn.execute("INSERT INTO processed_events (event_id, key, topic, partition,"
                                 ' "offset", outcome) VALUES (%s, %s, %s, %s, %s, %s)'
                                 " ON CONFLICT DO NOTHING",
                                 (doc.get("id"), key, msg.topic(), msg.partition(),
                                  msg.offset(), "applied")).rowcount
            if fresh:
                before = [int(v) for v in row[:4]]
                after = [b + s * q for b, s in zip(before, signs, strict=True)]
                after[1], after[2], after[3] = max(after[1], 0), max(after[2], 0), max(after[3], 0)
                version = int(row[4]) + 1
                conn.execute("INSERT INTO stock (key, sku, warehouse, on_hand, reserved,"
                             " in_transit, damaged, version, reorder_point, safety_stock,"
                             " severity) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 10, 0, 'ok')"
                             " ON CONFLICT (key) DO UPDATE SET on_hand = EXCLUDED.on_hand,"
                             " reserved = EXCLUDED.reserved, in_transit = EXCLUDED.in_transit,"
                             " damaged = EXCLUDED.damaged, version = EXCLUDED.version",
                             (key, sku, wh, *after, version))
                conn.execute("INSERT INTO ledger (key, version, event_id, event_type,"
                             " on_hand_before, on_hand_after, reserved_before, reserved_after,"
                             " in_transit_before, in_transit_after, damaged_before,"
                             " damaged_after, actor, event_time) VALUES (%s, %s, %s, %s, %s,"
                             " %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             (key, version, doc.get("id"), kind, before[0], after[0], before[1],
                              after[1], before[2], after[2], before[3], after[3],
                              doc.get("source"), doc.get("time")))
                producer.produce(out, json.dumps({"key": key, "on_hand": after[0],
                                                  "version": version}).encode(), key.encode())
                producer.poll(0)
        consumer.store_offsets(msg)
    producer.flush(30)
    consumer.close()


if __name__ == "__main__":
    main()
