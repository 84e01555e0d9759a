"""Reports against a direct recomputation from the events that were published: stock by
warehouse, the low keys, and movements by type and warehouse within windows of event
time, from `stockflow report` and `GET /v1/reports/...` alike."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from stockflow.devtools.localenv import LocalServices
from stockflow.publisher import Publisher
from tests.integration.harness import Env, make_env, processor_thread, wait_drained
from tests.integration.test_api import api_server, bearer, new_key

DAY1 = datetime(2026, 10, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def report(env: Env, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "stockflow", "report", *args, "--format",
                           "json"], env={**os.environ, **env.env_vars}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_reports_agree_with_the_events(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    rng = random.Random(12)
    on_hand: dict[str, int] = {}
    # (warehouse, type, day) -> [movements, units in, units out]
    moved: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0, 0, 0])

    def movement(key: str, type_: str, day: datetime, delta: int) -> None:
        on_hand[key] = on_hand.get(key, 0) + delta
        row = moved[(key.split("@")[1], type_, day)]
        row[0] += 1
        row[1 if delta > 0 else 2] += abs(delta)

    with Publisher(env.settings, source="report-test") as pub:
        for i in range(30):
            sku, wh = f"R-{i}", ("WH-A", "WH-B", "WH-C")[i % 3]
            key, at = f"{sku}@{wh}", DAY1 + timedelta(hours=i % 20)
            pub.publish("stock.thresholds-set", {"sku": sku, "warehouse": wh,
                                                 "reorder_point": 5, "safety_stock": 0},
                        time=at)
            received = rng.randint(1, 40)
            pub.publish("receipt.received", {"receipt_id": f"r{i}", "sku": sku,
                                             "warehouse": wh, "quantity": received}, time=at)
            movement(key, "receipt.received", DAY1, received)
            later = DAY2 + timedelta(hours=i % 20)
            shipped = rng.randint(1, received)
            pub.publish("shipment.dispatched", {"shipment_id": f"s{i}", "sku": sku,
                                                "warehouse": wh, "quantity": shipped},
                        time=later)
            movement(key, "shipment.dispatched", DAY2, -shipped)
            if i % 2:
                count = rng.randint(0, 12)
                pub.publish("stock.counted", {"count_id": f"c{i}", "sku": sku,
                                              "warehouse": wh, "on_hand": count}, time=later)
                if count != on_hand[key]:
                    movement(key, "stock.counted", DAY2, count - on_hand[key])
                else:  # a count that changes nothing is still a ledger row
                    moved[(wh, "stock.counted", DAY2)][0] += 1
    with processor_thread(env) as running:
        wait_drained(env)
        running.check()

    want_stock: dict[str, dict[str, int]] = {}
    for key, units in on_hand.items():
        row = want_stock.setdefault(key.split("@")[1], {
            "keys": 0, "on_hand": 0, "available": 0, "low": 0, "out_of_stock": 0})
        row["keys"] += 1
        row["on_hand"] += units
        row["available"] += units
        row["low"] += 0 < units <= 5
        row["out_of_stock"] += units <= 0
    got_stock = {r.pop("warehouse"): r for r in report(env, "stock")}
    assert {wh: {k: r[k] for k in want_stock[wh]} for wh, r in got_stock.items()} == want_stock
    low = report(env, "stock", "--low-only", "--warehouse", "WH-B")
    assert [r["key"] for r in low] == sorted(
        (k for k, u in on_hand.items() if k.endswith("@WH-B") and u <= 5),
        key=lambda k: (on_hand[k] > 0, on_hand[k], k))

    def want_moves(day: datetime, warehouse: str | None = None) -> list[dict[str, Any]]:
        return [{"warehouse": wh, "event_type": t, "movements": n, "units_in": i,
                 "units_out": o, "net_units": i - o}
                for (wh, t, d), (n, i, o) in sorted(moved.items())
                if d == day and warehouse in (None, wh)]

    thresholds = [{"warehouse": wh, "event_type": "stock.thresholds-set", "movements": 10,
                   "units_in": 0, "units_out": 0, "net_units": 0}
                  for wh in ("WH-A", "WH-B", "WH-C")]
    day1 = sorted(want_moves(DAY1) + thresholds, key=lambda r: (r["warehouse"],
                                                                 r["event_type"]))
    assert report(env, "movements", "--since", DAY1.isoformat(),
                  "--until", DAY2.isoformat()) == day1
    assert report(env, "movements", "--since", DAY2.isoformat()) == want_moves(DAY2)
    assert report(env, "movements", "--since", DAY2.isoformat(),
                  "--warehouse", "WH-C") == want_moves(DAY2, "WH-C")

    _, token = new_key(env, "reports", "read")
    with api_server(env) as api:
        r = bearer(token)
        assert api.get("/v1/reports/stock", headers=r).json() == report(env, "stock")
        assert api.get("/v1/reports/stock/low", headers=r,
                       params={"warehouse": "WH-B"}).json() == low
        got = api.get("/v1/reports/movements", headers=r,
                      params={"since": DAY2.isoformat(), "warehouse": "WH-C"})
        assert got.json() == want_moves(DAY2, "WH-C")
        assert api.get("/v1/reports/movements", headers=r,
                       params={"since": "2026-10-02T00:00:00"}).status_code == 422
