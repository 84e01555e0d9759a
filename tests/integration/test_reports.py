"""Reports against a direct recomputation from the events that were published: stock by
warehouse, the low keys, movements by type and warehouse within windows of event time
(units and values; for the chart, the demand turned away and the net value per currency),
and valuation now and as of a past instant, from `stockflow report` and
`GET /v1/reports/...` alike. Money is recomputed here in Decimal with the documented
rule (weighted average kept to six decimals, half to even) and must agree exactly."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from stockflow.adapters.db import reports
from stockflow.adapters.publisher import Publisher
from stockflow.devtools.localenv import LocalServices
from tests.images import assert_meaningful_png
from tests.integration.harness import Env, make_env, processor_thread, wait_drained
from tests.integration.test_api import api_server, bearer, new_key

DAY1 = datetime(2026, 10, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SIX = Decimal("0.000001")
CURRENCY = {"WH-A": "EUR", "WH-B": "EUR", "WH-C": "USD"}  # what each warehouse pays in
MONEY = ("value_in", "value_out", "net_value", "value", "average_unit_cost")


def decimals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Money arrives as decimal strings: compare it as numbers (scale aside)."""
    return [{k: Decimal(v) if k in MONEY and v is not None else v for k, v in r.items()}
            for r in rows]


def report(env: Env, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "stockflow", "report", *args, "--format",
                           "json"], env={**os.environ, **env.env_vars}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return decimals(json.loads(done.stdout))


def test_reports_agree_with_the_events(services: LocalServices, unique: str,
                                       tmp_path: Path) -> None:
    env = make_env(services, unique)
    rng = random.Random(12)
    on_hand: dict[str, int] = {}
    cost: dict[str, Decimal] = {}  # key -> average unit cost
    # (warehouse, type, day) -> [movements, units in, units out, value in, value out]
    moved: dict[tuple[str, str, datetime], list[Any]] = defaultdict(
        lambda: [0, 0, 0, None, None])
    held_day1: dict[str, tuple[int, Decimal | None]] = {}  # what valuation as of DAY2 sees

    def movement(key: str, type_: str, day: datetime, delta: int,
                 paid: Decimal | None = None) -> None:
        held = on_hand.get(key, 0)
        if paid is not None:
            average = cost.get(key)
            cost[key] = paid if average is None or held <= 0 else (
                (held * average + delta * paid) / (held + delta)).quantize(SIX, ROUND_HALF_EVEN)
        on_hand[key] = held + delta
        row = moved[(key.split("@")[1], type_, day)]
        row[0] += 1
        row[1 if delta > 0 else 2] += abs(delta)
        unit = paid if paid is not None else cost.get(key)
        if unit is not None:
            slot = 3 if delta > 0 else 4
            row[slot] = (row[slot] or 0) + abs(delta) * unit

    def receipt(pub: Publisher, key: str, ref: str, at: datetime, quantity: int) -> None:
        sku, wh = key.split("@")
        data: dict[str, Any] = {"receipt_id": ref, "sku": sku, "warehouse": wh,
                                "quantity": quantity}
        paid = None
        if not sku.endswith("4"):  # never costed
            paid = Decimal(rng.randint(1, 99_999)) / 100
            data |= {"unit_cost": str(paid), "currency": CURRENCY[wh]}
        pub.publish("receipt.received", data, time=at)
        movement(key, "receipt.received", DAY1, quantity, paid)

    # Topics are not ordered among themselves, and a movement's value depends on the cost
    # when it applies: each phase is drained before the next one is published.
    phases: list[list[tuple[str, dict[str, Any], datetime]]] = [[], []]
    pub = Publisher(env.settings, source="report-test")
    with pub, processor_thread(env) as running:
        for i in range(30):
            sku, wh = f"R-{i}", ("WH-A", "WH-B", "WH-C")[i % 3]
            key, at = f"{sku}@{wh}", DAY1 + timedelta(hours=i % 20)
            pub.publish("stock.thresholds-set", {"sku": sku, "warehouse": wh,
                                                 "reorder_point": 5, "safety_stock": 0},
                        time=at)
            received = rng.randint(1, 40)
            receipt(pub, key, f"r{i}", at, received)
            if i % 3 == 0:  # a second delivery at another price re-averages the cost
                more = rng.randint(1, 40)
                receipt(pub, key, f"r{i}b", at + timedelta(hours=1), more)
                received += more
            held_day1[key] = (on_hand[key], cost.get(key))
            later = DAY2 + timedelta(hours=i % 20)
            shipped = rng.randint(1, received)
            phases[0].append(("shipment.dispatched", {
                "shipment_id": f"s{i}", "sku": sku, "warehouse": wh, "quantity": shipped},
                later))
            movement(key, "shipment.dispatched", DAY2, -shipped)
            if i % 2:
                count = rng.randint(0, 12)
                phases[1].append(("stock.counted", {"count_id": f"c{i}", "sku": sku,
                                                    "warehouse": wh, "on_hand": count}, later))
                if count != on_hand[key]:
                    movement(key, "stock.counted", DAY2, count - on_hand[key])
                else:  # a count that changes nothing is still a ledger row
                    moved[(wh, "stock.counted", DAY2)][0] += 1
        # an order more than the key holds is turned away: lost demand, no units moved
        phases[1].append(("order.placed", {"order_id": "big", "line_id": "1", "sku": "R-1",
                                            "warehouse": "WH-B", "quantity": 500},
                          DAY2 + timedelta(hours=5)))
        moved[("WH-B", "order.placed", DAY2)][0] += 1
        # a receipt costed in another currency than its key's is rejected, not converted
        phases[1].append(("receipt.received", {"receipt_id": "r0-usd", "sku": "R-0",
                                                "warehouse": "WH-A", "quantity": 5,
                                                "unit_cost": "1.00", "currency": "USD"}, DAY2))
        for phase in phases:
            wait_drained(env)
            for type_, data, at in phase:
                pub.publish(type_, data, time=at)
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
                 "units_out": o, "net_units": i - o, "value_in": vi, "value_out": vo,
                 "net_value": None if vi is None and vo is None else (vi or 0) - (vo or 0)}
                for (wh, t, d), (n, i, o, vi, vo) in sorted(moved.items())
                if d == day and warehouse in (None, wh)]

    thresholds = [{"warehouse": wh, "event_type": "stock.thresholds-set", "movements": 10,
                   "units_in": 0, "units_out": 0, "net_units": 0, "value_in": None,
                   "value_out": None, "net_value": None}
                  for wh in ("WH-A", "WH-B", "WH-C")]
    day1 = sorted(want_moves(DAY1) + thresholds, key=lambda r: (r["warehouse"],
                                                                 r["event_type"]))
    assert report(env, "movements", "--since", DAY1.isoformat(),
                  "--until", DAY2.isoformat()) == day1
    assert report(env, "movements", "--since", DAY2.isoformat()) == want_moves(DAY2)
    assert report(env, "movements", "--since", DAY2.isoformat(),
                  "--warehouse", "WH-C") == want_moves(DAY2, "WH-C")
    assert report(env, "movements", "--since", "2026-10-02") == want_moves(DAY2)  # midnight UTC
    # piped, the table is as wide as its numbers: none is cut
    table = subprocess.run([sys.executable, "-m", "stockflow", "report", "movements",
                            "--since", "2026-10-01", "--until", "2026-10-02"],
                           env={**os.environ, **env.env_vars}, capture_output=True, text=True,
                           timeout=60, check=False)
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    cells = {c.strip() for line in table.stdout.splitlines() for c in line.split("│")}
    shown = report(env, "movements", "--since", "2026-10-01", "--until", "2026-10-02")
    assert shown == day1
    assert {f"{v:,}" if isinstance(v, int) else str(v) for row in shown for v in row.values()
            if v is not None} <= cells, table.stdout

    # what only the movements chart draws: the demand turned away, and the net value per
    # currency (here each warehouse's keys are valued in one, so it is the report's)
    net: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for move in want_moves(DAY2):
        if move["net_value"] is not None:
            net[move["warehouse"], CURRENCY[move["warehouse"]]] += move["net_value"]
    with env.db() as conn:
        assert reports.lost_demand(conn, reports.Filters(since=DAY2)) == {"WH-B": 500}
        assert reports.lost_demand(conn, reports.Filters(until=DAY2)) == {}
        assert reports.lost_demand(conn, reports.Filters("WH-A", since=DAY2)) == {}
        assert reports.net_value_by_currency(conn, reports.Filters(since=DAY2)) == net
        assert reports.net_value_by_currency(conn, reports.Filters("WH-C", since=DAY2)) == {
            k: v for k, v in net.items() if k[0] == "WH-C"}
    chart = tmp_path / "movements.png"
    plotted = subprocess.run([sys.executable, "-m", "stockflow", "report", "movements",
                              "--since", DAY2.isoformat(), "--plot", str(chart)],
                             env={**os.environ, **env.env_vars}, capture_output=True,
                             text=True, timeout=60, check=False)
    assert plotted.returncode == 0, plotted.stderr
    assert_meaningful_png(chart)

    valuation = valued({k: (u, cost.get(k)) for k, u in on_hand.items()})
    assert report(env, "valuation") == valuation
    assert report(env, "valuation", "--until", DAY2.isoformat()) == valued(held_day1)

    _, token = new_key(env, "reports", "read")
    with api_server(env) as api:
        r = bearer(token)
        assert api.get("/v1/reports/stock", headers=r).json() == report(env, "stock")
        assert api.get("/v1/reports/stock/low", headers=r,
                       params={"warehouse": "WH-B"}).json() == low
        got = api.get("/v1/reports/movements", headers=r,
                      params={"since": DAY2.isoformat(), "warehouse": "WH-C"})
        assert decimals(got.json()) == want_moves(DAY2, "WH-C")
        assert api.get("/v1/reports/movements", headers=r,
                       params={"since": "2026-10-02T00:00:00"}).status_code == 422
        assert decimals(api.get("/v1/reports/valuation", headers=r).json()) == valuation
        assert decimals(api.get("/v1/reports/valuation", headers=r, params={
            "until": DAY2.isoformat(), "warehouse": "WH-C"}).json()) == [
            v for v in valued(held_day1) if v["warehouse"] == "WH-C"]
        stock_a0 = api.get("/v1/stock/R-0@WH-A", headers=r).json()
        assert (Decimal(stock_a0["unit_cost"]), stock_a0["currency"]) == (cost["R-0@WH-A"],
                                                                          "EUR")
        rejected = api.get("/v1/stock/R-0@WH-A/ledger", headers=r).json()["items"]
        assert "r0-usd" not in json.dumps(rejected)


def valued(held: dict[str, tuple[int, Decimal | None]]) -> list[dict[str, Any]]:
    """Valuation by warehouse and currency: on hand times the average, per key."""
    groups: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [0, 0, None])
    for key, (units, average) in held.items():
        wh = key.split("@")[1]
        row = groups[(wh, CURRENCY[wh] if average is not None else None)]
        row[0] += 1
        row[1] += units
        if average is not None:
            row[2] = (row[2] or 0) + units * average
    return [{"warehouse": wh, "currency": cur, "keys": n, "on_hand": units, "value": value,
             "average_unit_cost": None if value is None or not units
             else (value / units).quantize(SIX, ROUND_HALF_EVEN)}
            for (wh, cur), (n, units, value) in sorted(
                groups.items(), key=lambda g: (g[0][0], g[0][1] is None, g[0][1] or ""))]
