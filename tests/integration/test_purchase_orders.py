"""Purchase orders through the real processor and Postgres: on_order per key from
purchase-order.placed / .cancelled and the receipts that name them, in the stock row,
the ledger and stock.changed, and a restarted processor reading a purchase order back."""

from __future__ import annotations

import json
from typing import Any

from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item
from tests.factories import envelope
from tests.integration.harness import make_env, processor_thread, publish, read_topic, wait_drained

KEY = "PO-1@W"


def _item(type_: str, id_: str, **data: Any) -> Item:
    return Item(TopicKind.RECEIPTS, KEY.encode(),
                envelope(type_, {"sku": "PO-1", "warehouse": "W", **data}, id_=id_))


def test_on_order_follows_a_purchase_order_and_its_receipts(services: LocalServices,
                                                            unique: str) -> None:
    env = make_env(services, unique)
    with processor_thread(env):
        publish(env, [
            _item("purchase-order.placed", "p1", po_id="P1", line_id="L1", quantity=50),
            _item("purchase-order.placed", "p2", po_id="P1", line_id="L2", quantity=30,
                  expected_at="2026-12-20T00:00:00+00:00"),
            _item("receipt.received", "r1", receipt_id="R1", quantity=20, po_id="P1",
                  line_id="L1"),
        ])
        wait_drained(env)
    # a new processor: the purchase order comes from Postgres, not from what it applied
    with processor_thread(env):
        publish(env, [
            _item("receipt.received", "r2", receipt_id="R2", quantity=40, po_id="P1"),
            _item("purchase-order.cancelled", "c1", po_id="P1", line_id="L2"),
        ])
        wait_drained(env)
    with env.db() as conn:
        row = conn.execute("SELECT on_hand, on_order FROM stock WHERE key = %s",
                           (KEY,)).fetchone()
        ledger = conn.execute("SELECT event_id, on_order_before, on_order_after FROM ledger"
                              " WHERE key = %s ORDER BY version", (KEY,)).fetchall()
    # L1: 50 - 20 named - 30 of the unnamed 40; L2: 30 - 10 left of them, then cancelled
    assert row == (60, 0)
    assert ledger == [("p1", 0, 50), ("p2", 50, 80), ("r1", 80, 60), ("r2", 60, 20),
                      ("c1", 20, 0)]
    changed = [json.loads(v or b"")["data"] for _, v, _ in read_topic(
        env, TopicKind.STOCK_CHANGED)]
    assert [(c["on_order"], c["delta"]["on_order"]) for c in changed] == [
        (50, 50), (80, 30), (60, -20), (20, -40), (0, -20)]
