"""The order coordinator on real Kafka and Postgres, beside the real stock processor: whole
orders in, per-key reservations placed by the coordinator and judged by the processor, one
answer per order on `inventory.order-status` and in Postgres."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.kafka import produce_all, producer
from stockflow.adapters.order_metrics import OrderMetrics
from stockflow.adapters.publisher import Publisher, PublishError
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


def line(line_id: str, sku: str, quantity: int, pin: str | None = None) -> dict[str, Any]:
    return {"line_id": line_id, "sku": sku, "quantity": quantity, "warehouse": pin}


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
    registry = CollectorRegistry()
    metrics = OrderMetrics(registry)
    with processor_thread(env) as processor, processor_thread(
            env, lambda s: build_coordinator(s, metrics=metrics)) as coord:
        deadline = time.monotonic() + 60
        while _on_hand(env) != stock:  # the stock is in before the orders come
            assert time.monotonic() < deadline, _on_hand(env)
            time.sleep(0.2)
        # through the publisher library, as an order service would: split over two
        # warehouses by priority; no allocation covers 99; cancelled; confirmed
        with Publisher(env.settings) as orders:
            orders.request_order("O1", [line("1", "A", 6), line("2", "B", 2)])
            orders.request_order("O2", [line("1", "A", 99)], strategy="most_available")
            orders.request_order("O3", [line("1", "B", 1, "W1")])
            # pinned to an inactive warehouse: valid as a message, the DLQ's by the registry
            orders.request_order("O5", [line("1", "A", 1, "OFF")])
        _wait(env, {"O1": ["allocated"], "O2": ["rejected"], "O3": ["allocated"]})
        with Publisher(env.settings) as orders:
            orders.confirm_order("O1")
            orders.cancel_order("O3", reason="changed my mind")
        got = _wait(env, {"O1": ["allocated", "confirmed"], "O2": ["rejected"],
                          "O3": ["allocated", "cancelled"]})
        processor.check()
        coord.check()
    assert "O5" not in got

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    for status, reason, n in (("allocated", "", 2), ("rejected", "insufficient_stock", 1),
                              ("confirmed", "", 1), ("cancelled", "requested", 1)):
        assert sample("stockflow_order_statuses_total", status=status, reason=reason) == n
    assert sample("stockflow_order_answer_seconds_count") == 3  # O1, O2, O3 answered
    assert (sample("stockflow_order_parts_count"), sample("stockflow_order_parts_sum")) == (2, 4)
    # O1 holds exactly its quantities, where priority put them; O2 and O3 hold nothing
    assert _reserved(env) == {"A@W1": 3, "A@W2": 3, "B@W1": 2}
    with env.db() as conn:
        parts = sorted(conn.execute(
            "SELECT line_id, key, quantity, status FROM reservations WHERE order_id = 'O1'"))
    assert parts == [("1~1", "A@W1", 3, "confirmed"), ("1~2", "A@W2", 3, "confirmed"),
                     ("2~1", "B@W1", 2, "confirmed")]
    with env.db() as conn:  # the ledger names who the coordinator placed the parts for
        actors = {str(a) for (a,) in conn.execute(
            "SELECT DISTINCT actor FROM ledger WHERE event_type LIKE 'order.%'")}
    assert actors == {"stockflow-coordinator/stockflow-publisher"}
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


def test_the_publisher_refuses_an_order_the_coordinator_would_dead_letter(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=1)
    with Publisher(env.settings) as orders:
        for lines, said in (([], "lines"), ([line("1", "A", 0)], "quantity"),
                            ([line("1", "A", 1), line("1", "B", 1)], "line_id"),
                            ([line("1~2", "A", 1)], "~")):
            with pytest.raises(PublishError, match=said):
                orders.request_order("O1", lines)
        with pytest.raises(PublishError, match="ship_to"):
            orders.request_order("O1", [line("1", "A", 1)], strategy="nearest")
    assert read_topic(env, TopicKind.ORDER_REQUESTS) == []  # nothing was sent


def test_remediation_re_sources_an_order_or_loses_it_and_never_touches_a_confirmed_one(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=2,
                   oversell_remediation="release_newest_pending")
    with env.db() as conn:
        for w in (wh("W1", 1), wh("W2", 2)):
            warehouses_db.add(conn, w, actor="test")
    stock = {"A@W1": 5, "A@W2": 6}
    for key, units in stock.items():
        sku, code = key.split("@")
        _send(env, TopicKind.RECEIPTS, key, "receipt.received",
              {"receipt_id": f"r-{key}", "sku": sku, "warehouse": code, "quantity": units})

    def count(code: str, on_hand: int) -> None:
        _send(env, TopicKind.ADJUSTMENTS, f"A@{code}", "stock.counted",
              {"count_id": f"c-{code}", "sku": "A", "warehouse": code, "on_hand": on_hand})

    with processor_thread(env) as processor, processor_thread(env, build_coordinator) as coord:
        deadline = time.monotonic() + 60
        while _on_hand(env) != stock:
            assert time.monotonic() < deadline, _on_hand(env)
            time.sleep(0.2)
        with Publisher(env.settings) as orders:
            orders.request_order("O1", [line("1", "A", 3)])  # W1, then confirmed
        _wait(env, {"O1": ["allocated"]})
        with Publisher(env.settings) as orders:
            orders.confirm_order("O1")
            orders.request_order("O2", [line("1", "A", 2)])  # the rest of W1
        _wait(env, {"O1": ["allocated", "confirmed"], "O2": ["allocated"]})
        with Publisher(env.settings) as orders:
            orders.request_order("O3", [line("1", "A", 4)])  # W2
        _wait(env, {"O3": ["allocated"]})
        # W1 counted short by 2: O2's pending part goes (the newest), O1's confirmed one
        # stays; O2 finds its 2 units at W2
        count("W1", 3)
        _wait(env, {"O2": ["allocated", "reallocated"]})
        # W2 counted short by 2: O2's new part is the newest pending there, and no
        # warehouse has 2 units left for it: O2 is lost; O3, older, keeps its units
        count("W2", 4)
        got = _wait(env, {"O1": ["allocated", "confirmed"],
                          "O2": ["allocated", "reallocated", "rejected"],
                          "O3": ["allocated"]})
        processor.check()
        coord.check()
    assert got["O2"][-1] == "rejected"
    with env.db() as conn:
        reason = conn.execute("SELECT data->>'reason' FROM order_statuses WHERE order_id = 'O2'"
                              " AND type = 'order.rejected'").fetchone()
        released = conn.execute("SELECT line_id, key FROM reservations WHERE order_id = 'O2'"
                                " AND status = 'released' ORDER BY line_id").fetchall()
    assert reason == ("stock_lost",)
    assert released == [("1~1", "A@W1"), ("1~2", "A@W2")]
    assert _reserved(env) == {"A@W1": 3, "A@W2": 4}  # O1 (confirmed) and O3 untouched


def test_a_part_cancelled_before_it_was_placed_ends_its_order_as_released(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=2)
    with env.db() as conn:
        warehouses_db.add(conn, wh("W1", 1), actor="test")
    _send(env, TopicKind.RECEIPTS, "A@W1", "receipt.received",
          {"receipt_id": "r", "sku": "A", "warehouse": "W1", "quantity": 5})
    # another publisher cancels the line id the coordinator will give the order's part:
    # the processor records it as released, so the placement will be a no-op, unjudged
    _send(env, TopicKind.ORDERS, "A@W1", "order.cancelled",
          {"order_id": "O1", "line_id": "1~1", "sku": "A", "warehouse": "W1"})
    with processor_thread(env) as processor, processor_thread(env, build_coordinator) as coord:
        deadline = time.monotonic() + 60
        while _on_hand(env) != {"A@W1": 5}:
            assert time.monotonic() < deadline, _on_hand(env)
            time.sleep(0.2)
        with Publisher(env.settings) as orders:
            orders.request_order("O1", [line("1", "A", 2)])
        # the sweeper (every second here) finds the part the processor will never judge
        _wait(env, {"O1": ["cancelled"]})
        processor.check()
        coord.check()
    cancelled = next(json.loads(v or b"{}") for _, v, _ in read_topic(
        env, TopicKind.ORDER_STATUS))
    assert cancelled["data"]["reason"] == "part_released"
    assert _reserved(env) == {}
