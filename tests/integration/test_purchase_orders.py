"""Purchase orders through the real processor and Postgres: on_order per key from
purchase-order.placed / .cancelled and the receipts that name them, in the stock row,
the ledger and stock.changed, and a restarted processor reading a purchase order back."""

from __future__ import annotations

import json
from typing import Any

import httpx

from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item
from tests.factories import envelope
from tests.integration.harness import make_env, processor_thread, publish, read_topic, wait_drained
from tests.integration.test_api import api_server, bearer, new_key
from tests.integration.test_imports import progress

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


def test_purchase_orders_through_the_http_api_and_a_csv_import(services: LocalServices,
                                                               unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "buyer", "write")
    _, reader = new_key(env, "planner", "read")
    w, r = bearer(writer), bearer(reader)

    def stock(api: httpx.Client, key: str) -> dict[str, Any]:
        got = api.get(f"/v1/stock/{key}", headers=r)
        assert got.status_code == 200, got.text
        return dict(got.json())

    def outcomes(answer: httpx.Response) -> list[str]:
        assert answer.status_code == 202, answer.text
        return [o["outcome"] for o in answer.json()["outcomes"]]

    with api_server(env) as api, processor_thread(env) as running:
        placing = {"po_id": "PO-7", "lines": [
            {"sku": "A", "warehouse": "W1", "quantity": 40, "line_id": "1",
             "expected_at": "2026-12-20T00:00:00Z"},
            {"sku": "A", "warehouse": "W1", "quantity": 10, "line_id": "2"},
            {"sku": "B", "warehouse": "W1", "quantity": 5}]}
        twice = {"po_id": "PO-8", "lines": [placing["lines"][2], placing["lines"][2]]}
        refused = api.post("/v1/purchase-orders", json=twice, headers=w)
        assert refused.status_code == 422 and "named twice" in refused.json()["detail"]
        assert api.post("/v1/purchase-orders", json=placing, headers=r).status_code == 403
        assert outcomes(api.post("/v1/purchase-orders", json=placing, params={"wait": 15},
                                 headers=w)) == ["applied"] * 3
        assert (stock(api, "A@W1")["on_order"], stock(api, "B@W1")["on_order"]) == (50, 5)

        # a receipt naming the purchase order's line brings it in
        assert outcomes(api.post("/v1/receipts", params={"wait": 15}, headers=w, json={
            "sku": "A", "warehouse": "W1", "quantity": 30, "po_id": "PO-7",
            "line_id": "1"})) == ["applied"]
        a = stock(api, "A@W1")
        assert (a["on_hand"], a["on_order"]) == (30, 20)
        ledger = api.get("/v1/stock/A@W1/ledger", headers=r).json()["items"]
        assert [(m["on_order_before"], m["on_order_after"]) for m in ledger] == [
            (0, 40), (40, 50), (50, 20)]
        seen = api.get("/v1/purchase-orders/PO-7", headers=r).json()
        assert seen["on_order"] == 25
        assert [(k["key"], [(ln["line_id"], ln["ordered"], ln["received"], ln["open"])
                            for ln in k["lines"]]) for k in seen["keys"]] == [
            ("A@W1", [("1", 40, 30, 10), ("2", 10, 0, 10)]), ("B@W1", [(None, 5, 0, 5)])]
        assert seen["keys"][0]["lines"][0]["expected_at"].startswith("2026-12-20")

        # cancelled at every key it is recorded at: nothing left on order, what came stays
        assert outcomes(api.post("/v1/purchase-orders/PO-7/cancel", params={"wait": 15},
                                 headers=w)) == ["applied"] * 2
        assert [stock(api, k)["on_order"] for k in ("A@W1", "B@W1")] == [0, 0]
        assert stock(api, "A@W1")["on_hand"] == 30
        unknown = api.post("/v1/purchase-orders/PO-404/cancel", headers=w)
        assert unknown.status_code == 404, unknown.text
        assert api.get("/v1/purchase-orders/PO-404", headers=r).status_code == 404

        # a purchase order from a spreadsheet
        sheet = ("po_id,sku,warehouse,quantity,line_id\n"
                 "PO-9,A,W1,12,1\nPO-9,C,W1,7,1\n")
        uploaded = api.post("/v1/imports", headers=w, data={"kind": "purchase-orders"},
                            files={"file": ("po.csv", sheet.encode(), "text/csv")})
        assert uploaded.status_code == 202, uploaded.text
        done = progress(api, uploaded.json()["import_id"], r)
        assert (done["applied"], done["pending"]) == (2, 0), done
        assert [stock(api, k)["on_order"] for k in ("A@W1", "C@W1")] == [12, 7]
        totals = api.get("/v1/skus/A", headers=r).json()["totals"]
        assert totals["on_order"] == 12
        running.check()

