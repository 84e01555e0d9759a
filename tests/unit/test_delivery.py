"""A producer that reports only failed deliveries still reports every failure."""

from __future__ import annotations

from confluent_kafka import Producer

from stockflow.adapters.kafka import DeliveryFailures


def test_undeliverable_messages_are_reported() -> None:
    failures = DeliveryFailures()
    # Nothing listens on port 1: every message times out undelivered.
    prod = Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 300,
                     "log_level": 0, **failures.config()})
    for i in range(3):
        prod.produce("inventory.stock.changed", b"v", str(i).encode())
    assert prod.flush(10) == 0
    assert len(failures.messages) == 3
    assert all(m.startswith("inventory.stock.changed: ") for m in failures.messages)
