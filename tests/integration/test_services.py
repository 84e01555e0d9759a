"""The provisioned services are the real ones: a message goes through Kafka into Postgres."""

from __future__ import annotations

import psycopg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stockflow.devtools.localenv import LocalServices


def test_round_trip_through_kafka_and_postgres(services: LocalServices, unique: str) -> None:
    topic = f"roundtrip-{unique}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    producer = Producer({"bootstrap.servers": services.kafka_bootstrap})
    producer.produce(topic, key=b"SKU-1@WH-1", value=b"hello")
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": services.kafka_bootstrap, "group.id": unique,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    msg = None
    for _ in range(60):
        msg = consumer.poll(1)
        if msg is not None and msg.error() is None:
            break
    consumer.close()
    assert msg is not None
    assert msg.error() is None
    assert msg.value() == b"hello"

    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"CREATE TABLE rt_{unique} (k text, v bytea)")
        conn.execute(f"INSERT INTO rt_{unique} VALUES (%s, %s)",
                     ((msg.key() or b"").decode(), msg.value()))
        row = conn.execute(f"SELECT k, v FROM rt_{unique}").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    assert row == ("SKU-1@WH-1", b"hello")
    assert fsync == ("on",)
