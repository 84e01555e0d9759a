"""Every DLQ reason code is produced (by the stock processor, and `conflict` by the order
coordinator), lands on the DLQ with its headers, and processing goes on after it; the
group's offsets in Kafka then mirror the positions in Postgres."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.kafka import produce_all, producer
from stockflow.contract.emit import Message
from stockflow.contract.events import Reason, envelope
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import _Builder, _invalid
from stockflow.entrypoints.app import build_coordinator
from tests.factories import wh
from tests.integration.harness import (
    Env,
    db_quantities,
    make_env,
    processor_thread,
    publish,
    read_topic,
    refuse_writes_of,
    wait_drained,
)
from tests.integration.test_api import cli


def test_every_reason_reaches_the_dlq_with_headers(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    b = _Builder(1, datetime.now(UTC))
    key = "SKU-1@WH-1"
    items = [b.item("receipt.received", key, {"receipt_id": "R1", "quantity": 5,
                                              "unit_cost": "2.50", "currency": "EUR"})]
    items += _invalid(b, key)
    items.append(b.item("stock.damaged", key, {"damage_id": "D1", "quantity": 50},
                        reason="negative_result"))
    # after R1 on the same partition: the key is valued in EUR by then
    items.append(b.item("receipt.received", key, {"receipt_id": "R-usd", "quantity": 1,
                                                  "unit_cost": "2.70", "currency": "USD"},
                        reason="currency_mismatch"))
    items.append(b.item("receipt.received", key, {"receipt_id": "R-refused", "quantity": 100},
                        reason="processing_error"))
    items.append(b.item("stock.adjusted", key, {"adjustment_id": "A1", "delta": 3,
                                                "reason": "found"}))
    refuse_writes_of(env, [items[-2].id or ""])
    publish(env, items)
    # the order coordinator's own reason: another body under a known order_id
    with env.db() as conn:
        warehouses_db.add(conn, wh("WH-1", 1), actor="test")
    first, conflicting = (Message(env.topics.name(TopicKind.ORDER_REQUESTS), b"O-1", json.dumps(
        envelope("order.requested", {"order_id": "O-1", "lines": [
            {"line_id": "1", "sku": "SKU-2", "quantity": q, "warehouse": "WH-1"}]})).encode())
        for q in (1, 2))
    prod = producer(env.settings)
    produce_all(prod, [first, conflicting])
    assert prod.flush(30) == 0
    with processor_thread(env), processor_thread(env, build_coordinator):
        wait_drained(env)
        deadline = time.monotonic() + 60
        while len(dlq := read_topic(env, TopicKind.DLQ)) <= len([i for i in items if i.reason]):
            assert time.monotonic() < deadline, "the conflict did not reach the DLQ"
            time.sleep(0.5)
        _until_kafka_offsets_mirror_postgres(env)

    by_value = {v: h for _, v, h in dlq}
    rejected = [i for i in items if i.reason]
    assert {r.value for r in Reason} == {i.reason for i in rejected} | {"conflict"}
    headers = by_value[conflicting.value]
    assert headers["stockflow.error.reason"] == b"conflict"
    assert headers["stockflow.error.topic"].decode() == env.topics.name(
        TopicKind.ORDER_REQUESTS)
    for item in rejected:
        headers = by_value[item.value]  # original bytes, unchanged
        assert headers["stockflow.error.reason"].decode() == item.reason
        assert headers["stockflow.error.message"]
        assert headers["stockflow.error.topic"].decode() == env.topics.name(item.kind)
        assert int(headers["stockflow.error.partition"]) >= 0
        assert int(headers["stockflow.error.offset"]) >= 0
    assert len(dlq) == len(rejected) + 1
    # the receipt before and the adjustment after the rejections were both applied
    assert db_quantities(env)[key] == (8, 0, 0, 0)


def _until_kafka_offsets_mirror_postgres(env: Env) -> None:
    """Lag tools and KEDA read the group's offsets in Kafka: they follow Postgres."""
    with env.db() as conn:
        rows = conn.execute("SELECT topic, partition, next_offset FROM consumer_offsets"
                            " WHERE group_id = %s", (env.settings.group_id,)).fetchall()
    want = {(str(t), int(p)): int(n) for t, p, n in rows}  # type: ignore[call-overload]
    assert want
    cons = Consumer({"bootstrap.servers": env.settings.kafka_bootstrap,
                     "group.id": env.settings.group_id})
    try:
        deadline = time.monotonic() + 30
        while True:
            got = {(tp.topic, tp.partition): tp.offset for tp in cons.committed(
                [TopicPartition(t, p) for t, p in want], timeout=10)}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        cons.close()
    assert got == want


def test_the_cli_lists_shows_and_redrives_dead_letters(services: LocalServices,
                                                       unique: str) -> None:
    env = make_env(services, unique)
    b = _Builder(1, datetime.now(UTC))
    key = "SKU-9@WH-1"
    with processor_thread(env) as running:
        publish(env, [b.item("stock.adjusted", key, {"adjustment_id": "A1", "delta": -3,
                                                     "reason": "found broken"})])
        wait_drained(env)
        deadline = time.monotonic() + 30
        while not (listed := json.loads(cli(env, "dlq", "list", "--json"))):
            assert time.monotonic() < deadline, "no dead letter listed"  # the outbox's
            time.sleep(0.5)
        assert [(d["reason"], d["key"]["text"]) for d in listed] == [("negative_result", key)]
        place = listed[0]["place"]
        assert json.loads(cli(env, "dlq", "list", "--json", "--reason", "oversized")) == []
        shown = json.loads(cli(env, "dlq", "show", place))
        assert json.loads(shown["value"]["text"])["data"]["adjustment_id"] == "A1"
        assert shown["from"]["topic"].endswith("adjustments")
        publish(env, [b.item("receipt.received", key, {"receipt_id": "R1", "quantity": 5})])
        wait_drained(env)
        # the receipt has arrived since: re-driven, the adjustment applies
        assert "re-drove" in cli(env, "dlq", "redrive", place)
        deadline = time.monotonic() + 30
        while db_quantities(env)[key][0] != 2:
            assert time.monotonic() < deadline, "the re-driven adjustment was not applied"
            time.sleep(0.2)
        assert len(json.loads(cli(env, "dlq", "list", "--json"))) == 1  # nothing new there
        running.check()
