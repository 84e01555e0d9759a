"""The order coordinator on real Kafka and Postgres, beside the real stock processor: whole
orders in, per-key reservations placed by the coordinator and judged by the processor, one
answer per order on `inventory.order-status` and in Postgres."""

from __future__ import annotations

import json
import time
from typing import Any

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.kafka import produce_all, producer
from stockflow.contract.emit import Message
from stockflow.contract.events import envelope
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.entrypoints.app import build_coordinator
from tests.factories import wh
from tests.integration.harness import Env, make_env, processor_thread, read_topic


def _send(env: Env, kind: TopicKind, key: str, type_: str, data: dict[str, Any]) -> None:
    doc = envelope(type_, data)
    if kind is not TopicKind.ORDER_REQUESTS:
        doc["subject"] = key
    prod = producer(env.settings)
    produce_all(prod, [Message(env.topics.name(kind), key.encode(),
                               json.dumps(doc).encode())])
    assert prod.flush(30) == 0


def _order(env: Env, order_id: str, *lines: tuple[str, str, int, str | None],
           **fields: Any) -> None:
    _send(env, TopicKind.ORDER_REQUESTS, order_id, "order.requested", {
        "order_id": order_id, **fields,
        "lines": [{"line_id": ln, "sku": sku, "quantity": q, "warehouse": pin}
                  for ln, sku, q, pin in lines]})


def _statuses(env: Env) -> dict[str, list[str]]:
    with env.db() as conn:
        rows = conn.execute("SELECT order_id, type FROM order_statuses ORDER BY seq")
        found: dict[str, list[str]] = {}
        for order_id, type_ in rows:
            found.setdefault(str(order_id), []).append(str(type_).removeprefix("order."))
    return found


def _wait(env: Env, want: dict[str, list[str]], timeout: float = 90) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _statuses(env)
        if all(got.get(o) == s for o, s in want.items()):
            return got
        assert time.monotonic() < deadline, f"statuses {got}, wanted {want}"
        time.sleep(0.3)


def _reserved(env: Env) -> dict[str, int]:
    with env.db() as conn:
        return {str(k): int(str(r)) for k, r in conn.execute(
            "SELECT key, reserved FROM stock WHERE reserved > 0")}


def _on_hand(env: Env) -> dict[str, int]:
    with env.db() as conn:
        return {str(k): int(str(n)) for k, n in conn.execute("SELECT key, on_hand FROM stock")}


def test_orders_are_allocated_rejected_confirmed_and_cancelled_as_units(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=2)
    with env.db() as conn:
        for w in (wh("W1", 1), wh("W2", 2), wh("W3", 3), wh("OFF", 0, active=False)):
            warehouses_db.add(conn, w, actor="test")
    stock = {"A@W1": 3, "A@W2": 5, "B@W1": 4, "A@OFF": 50}
    for key, units in stock.items():
        sku, wh_code = key.split("@")
        _send(env, TopicKind.RECEIPTS, key, "receipt.received",
              {"receipt_id": f"r-{key}", "sku": sku, "warehouse": wh_code, "quantity": units})
    with processor_thread(env) as processor, processor_thread(env, build_coordinator) as coord:
        deadline = time.monotonic() + 60
        while _on_hand(env) != stock:  # the stock is in before the orders come
            assert time.monotonic() < deadline, _on_hand(env)
            time.sleep(0.2)
        # split over two warehouses by priority; no allocation covers 99; cancelled; confirmed
        _order(env, "O1", ("1", "A", 6, None), ("2", "B", 2, None))
        _order(env, "O2", ("1", "A", 99, None))
        _order(env, "O3", ("1", "B", 1, "W1"))
        _order(env, "O5", ("1", "A", 1, "OFF"))  # pinned to an inactive warehouse: the DLQ
        _wait(env, {"O1": ["allocated"], "O2": ["rejected"], "O3": ["allocated"]})
        _send(env, TopicKind.ORDER_REQUESTS, "O1", "order.confirm-requested", {"order_id": "O1"})
        _send(env, TopicKind.ORDER_REQUESTS, "O3", "order.cancel-requested", {"order_id": "O3"})
        got = _wait(env, {"O1": ["allocated", "confirmed"], "O2": ["rejected"],
                          "O3": ["allocated", "cancelled"]})
        processor.check()
        coord.check()
    assert "O5" not in got
    # O1 holds exactly its quantities, where priority put them; O2 and O3 hold nothing
    assert _reserved(env) == {"A@W1": 3, "A@W2": 3, "B@W1": 2}
    with env.db() as conn:
        parts = sorted(conn.execute(
            "SELECT line_id, key, quantity, status FROM reservations WHERE order_id = 'O1'"))
    assert parts == [("1~1", "A@W1", 3, "confirmed"), ("1~2", "A@W2", 3, "confirmed"),
                     ("2~1", "B@W1", 2, "confirmed")]
    statuses = [json.loads(v or b"{}") for _, v, _ in read_topic(env, TopicKind.ORDER_STATUS)]
    allocated = next(s for s in statuses if s["type"] == "order.allocated"
                     and s["data"]["order_id"] == "O1")
    assert [(a["warehouse"], a["quantity"]) for a in allocated["data"]["lines"][0]["allocations"]
            ] == [("W1", 3), ("W2", 3)]
    rejected = next(s for s in statuses if s["type"] == "order.rejected")
    assert rejected["data"]["reason"] == "insufficient_stock"
    dead = [h for _, _, h in read_topic(env, TopicKind.DLQ)]
    assert [h["stockflow.error.reason"] for h in dead] == [b"schema_violation"]
    assert b"inactive" in dead[0]["stockflow.error.message"]
