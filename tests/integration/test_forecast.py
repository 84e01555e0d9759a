"""`stockflow forecast` on a backfilled ledger: the demand and the stock day by day it reads
equal the history that was published, every key gets a forecast and a suggestion that
follow its lead time and service-level target, what is on order counts in its position,
the backtest's service level is judged on every key whose window covers its cover,
`--publish` emits valid `reorder.suggested` events, and `--apply` moves the reorder points
through the processor, so the low-stock alerts follow (and the chart sees when, and to
what: the processor keeps each thresholds change's values, exactly once); each run keeps
its keys' forecasts and suggestions for the console, unless `--no-keep`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from stockflow.adapters.db import demand, forecasts
from stockflow.adapters.publisher import Publisher
from stockflow.contract.topics import TopicKind
from stockflow.devtools.backfill import history, patterns
from stockflow.devtools.localenv import LocalServices
from stockflow.planning.forecast import MODELS
from tests.images import assert_meaningful_png
from tests.integration.harness import Env, make_env, processor_thread, read_topic, wait_drained

DAYS, SEED = 150, 5
SUGGESTED = ("lead_time_days", "review_days", "service_level", "lead_time_demand",
             "safety_stock", "reorder_point", "order_up_to", "position", "suggested_quantity",
             "on_hand", "available", "in_transit", "on_order")
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "outputs"
                     / "reorder.suggested.schema.json").read_text())


def stockflow(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "stockflow", *args],
                          env={**os.environ, **env.env_vars, "STOCKFLOW_LOG_LEVEL": "WARNING"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done


def severity(available: int, reorder_point: int) -> str:
    return "out_of_stock" if available <= 0 else "low" if available <= reorder_point else "ok"


def test_forecasts_suggestions_and_applied_reorder_points(services: LocalServices, unique: str,
                                                          tmp_path: Path) -> None:
    env = make_env(services, unique)
    with processor_thread(env) as running:
        deadline = time.monotonic() + 60
        while not running.processor.health.assigned and time.monotonic() < deadline:
            time.sleep(0.1)
        stockflow(env, "simulate", "--backfill-days", str(DAYS), "--skus", "3",
                  "--warehouses", "2", "--seed", str(SEED), "--rate", "2000")
        wait_drained(env)
        stockflow(env, "lead-time", "set", "WH-1", "3")
        stockflow(env, "lead-time", "set", "SKU-00000@WH-2", "12")
        stockflow(env, "service-level", "set", "WH-2", "90%")
        stockflow(env, "service-level", "set", "SKU-00001@WH-2", "0.99")
        listed = stockflow(env, "service-level", "list").stdout
        assert "WH-2" in listed and "90.0%" in listed and "99.0%" in listed

        # the demand read from the ledger is the published history, day by day
        keys = [f"SKU-{s:05d}@WH-{w}" for s in range(3) for w in (1, 2)]
        now = datetime.now(UTC)
        first = now.date() - timedelta(days=DAYS)
        want: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((2, DAYS)))
        moved: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(DAYS))  # on hand's deltas
        for type_, data, at in history(patterns(keys, DAYS, SEED), DAYS, now, SEED):
            key, day = f"{data['sku']}@{data['warehouse']}", (at.date() - first).days
            if type_ in ("shipment.dispatched", "order.placed"):
                want[key][0 if type_ == "shipment.dispatched" else 1, day] += data["quantity"]
            if type_ != "order.placed":  # turned away: moves nothing
                moved[key][day] += data["quantity"] * (-1 if type_.startswith("shipment")
                                                       else 1)
        with env.db() as conn:
            got = demand.daily_demand(conn, first, DAYS)
            stock = {key: demand.stock_by_day(conn, key, first, DAYS) for key in keys}
        assert set(got) == set(keys)
        for key in keys:
            assert np.array_equal(got[key].shipped, want[key][0]), key
            assert np.array_equal(got[key].lost, want[key][1]), key
            # the chart's stock: on hand at the end of each day; nothing reserved, in
            # transit or on order in this history, so the position is on hand
            assert np.array_equal(stock[key].on_hand, np.cumsum(moved[key])), key
            assert np.array_equal(stock[key].position, stock[key].on_hand), key
            assert not stock[key].on_order.any(), key

        # a key counted at its coming reorder point: fine under the constant 10, low after
        dry = json.loads(stockflow(env, "forecast", "--all", "--days", str(DAYS),
                                   "--json").stdout)
        counted = max(dry["keys"], key=lambda k: k["reorder_point"])
        assert counted["reorder_point"] > 10
        sku, _, warehouse = counted["key"].partition("@")
        with Publisher(env.settings) as pub:
            pub.publish("stock.counted", {"sku": sku, "warehouse": warehouse, "count_id": "c1",
                                          "on_hand": counted["reorder_point"]})
        wait_drained(env)
        with env.db() as conn:
            before = demand.positions(conn)

        done = stockflow(env, "forecast", "--all", "--days", str(DAYS), "--json", "--backtest",
                         "--publish", "--apply", "--workers", "2")
        doc = json.loads(done.stdout)
        planned = {k["key"]: k for k in doc["keys"]}
        assert set(planned) | set(doc["skipped"]) == set(keys) and planned
        for key, k in planned.items():
            assert k["model"] in MODELS and len(k["mean"]) == 14
            assert k["lead_time_days"] == (12 if key == "SKU-00000@WH-2"
                                           else 3 if key.endswith("@WH-1") else 7)
            assert k["service_level"] == (0.99 if key == "SKU-00001@WH-2"
                                          else 0.9 if key.endswith("@WH-2") else 0.95)
            # topped up at each review to a level covering lead time and review period
            assert k["reorder_point"] == k["order_up_to"] >= math.ceil(k["lead_time_demand"])
            assert k["suggested_quantity"] == max(k["order_up_to"] - k["position"], 0)
            assert k["position"] == (before[key].available + before[key].in_transit
                                     + before[key].on_order)
        # each planned key's forecast and suggestion kept for the console, as the run said
        with env.db() as conn:
            kept = forecasts.kept(conn, keys)
        assert set(kept) == set(planned) and doc["kept"] == len(planned)
        for key, k in planned.items():
            row = kept[key]
            assert (row.as_of.isoformat(), row.scope, row.run_keys) == (doc["as_of"], "all",
                                                                      len(planned))
            assert (row.model, row.kind, row.mean, row.intervals) == (
                k["model"], k["kind"], k["mean"], k["intervals"])
            assert [getattr(row, f) for f in SUGGESTED] == [k[f] for f in SUGGESTED], key
            assert row.published == (k["suggested_quantity"] > 0)
            assert row.stock_version == before[key].version  # the stock the position read
            assert len(row.recent) == 28
        backtest = doc["backtest"]
        assert backtest["keys"]["all"] == len(planned)
        assert set(backtest["coverage"]) == {"80", "95"}
        # the service level held out: one cycle per key whose 14-day window covers its lead
        # time and review (12 + 7 days do not), grouped by class and target
        judged: dict[tuple[str, float], int] = defaultdict(int)
        for k in planned.values():
            if k["lead_time_days"] + k["review_days"] <= 14:
                judged[k["kind"], k["service_level"]] += 1
        service = {(g["class"], g["target"]): g for g in backtest["service_level"]}
        assert {g: s["cycles"] for g, s in service.items()} == judged
        assert all(0 <= s["kept"] <= s["cycles"] for s in service.values())

        # --publish: one valid reorder.suggested per key with something to order
        ordering = {k for k, v in planned.items() if v["suggested_quantity"] > 0}
        events = [json.loads(v or b"") for _, v, _ in read_topic(env, TopicKind.REORDER)]
        assert doc["published"]["reorder.suggested"] == len(events) == len(ordering)
        for event in events:
            jsonschema.validate(event, SCHEMA)
            k = planned[event["subject"]]
            assert event["data"]["suggested_quantity"] == k["suggested_quantity"]
            assert event["data"]["reorder_point"] == k["reorder_point"]

        # --apply: the processor takes the reorder points, the alerts follow them
        wait_drained(env)
        with env.db() as conn:
            after = demand.positions(conn)
            severities = {str(k): str(v) for k, v in conn.execute(
                "SELECT key, severity FROM stock").fetchall()}
        raised = {json.loads(v or b"")["subject"] for _, v, _ in read_topic(
            env, TopicKind.LOW_STOCK) if json.loads(v or b"")["type"] == "low-stock.raised"
            and json.loads(v or b"")["data"]["cause"]["type"] == "stock.thresholds-set"}
        for key, k in planned.items():
            # the chart's threshold history: the key's first movement (the backfill's first
            # day) and the reorder point --apply set today, if it changed one, each with its
            # values (the first's: those the change replaced, kept with it)
            with env.db() as conn:
                changes = demand.threshold_changes(conn, key)
            held = (before[key].reorder_point, before[key].safety_stock)
            changed = k["reorder_point"] != before[key].reorder_point
            assert [(c.at.astimezone(UTC).date(), c.reorder_point, c.safety_stock)
                    for c in changes] == [(first, *held), *(
                        [(now.date(), k["reorder_point"], held[1])] if changed else [])], key
            assert after[key].reorder_point == k["reorder_point"]
            assert after[key].safety_stock == before[key].safety_stock  # held back: untouched
            assert severities[key] == severity(after[key].available, k["reorder_point"])
        went_low = {k for k in planned if severity(before[k].available, before[k].reorder_point)
                    == "ok" != severities[k]}
        assert raised == went_low and counted["key"] in went_low

        # the same run again: the same suggestions (same ids), no threshold left to change
        again = json.loads(stockflow(env, "forecast", "--all", "--days", str(DAYS), "--json",
                                     "--publish", "--apply").stdout)
        assert again["published"]["stock.thresholds-set"] == 0
        ids = [json.loads(v or b"")["id"] for _, v, _ in read_topic(env, TopicKind.REORDER)]
        assert len(set(ids)) == len(ordering) and len(ids) == 2 * len(ordering)

        # what was ordered from a supplier counts: the next day's --publish (here: the same
        # day's, run again) does not suggest that need again
        key = next(iter(ordering))
        sku, _, warehouse = key.partition("@")
        with Publisher(env.settings) as pub:
            pub.publish("purchase-order.placed", {
                "po_id": "PO-1", "line_id": "1", "sku": sku, "warehouse": warehouse,
                "quantity": planned[key]["suggested_quantity"]})
        wait_drained(env)
        ordered = json.loads(stockflow(env, "forecast", "--all", "--days", str(DAYS),
                                       "--json", "--publish").stdout)
        k = next(k for k in ordered["keys"] if k["key"] == key)
        assert k["on_order"] == planned[key]["suggested_quantity"]
        assert k["suggested_quantity"] == 0
        subjects = [json.loads(v or b"")["subject"] for _, v, _ in read_topic(
            env, TopicKind.REORDER)]
        assert subjects.count(key) == 2  # the two runs before the purchase order

        # the pictures a user would open; a run of one key keeps it, replacing the key's
        # last, and a what-if run (--no-keep) keeps nothing
        chart, summary = tmp_path / "key.png", tmp_path / "backtest.png"
        key = next(iter(planned))
        with env.db() as conn:
            kept = forecasts.kept(conn, keys)
        stockflow(env, "forecast", "--key", key, "--days", str(DAYS), "--plot", str(chart))
        stockflow(env, "forecast", "--all", "--days", str(DAYS), "--plot", str(summary),
                  "--no-keep")
        with env.db() as conn:
            now_kept = forecasts.kept(conn, keys)
        assert (now_kept[key].scope, now_kept[key].run_keys) == ("key", 1)
        assert now_kept[key].made_at > kept[key].made_at
        assert {k: v for k, v in now_kept.items() if k != key} == {
            k: v for k, v in kept.items() if k != key}
        assert_meaningful_png(chart)
        assert_meaningful_png(summary)
        running.check()


def test_a_key_without_history_is_named_not_forecast(services: LocalServices,
                                                     unique: str) -> None:
    env = make_env(services, unique)
    with processor_thread(env) as running:
        with Publisher(env.settings) as pub:
            pub.publish("receipt.received", {"sku": "NEW", "warehouse": "WH-1",
                                             "receipt_id": "r1", "quantity": 5})
        wait_drained(env)
        running.check()
    done = stockflow(env, "forecast", "--key", "NEW@WH-1", "--json")
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["keys"] == [] and "needs 70" in doc["skipped"]["NEW@WH-1"]
    missing = subprocess.run([sys.executable, "-m", "stockflow", "forecast", "--key",
                              "NOPE@WH-1"], env={**os.environ, **env.env_vars},
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "no stock recorded for NOPE@WH-1" in missing.stderr


def test_thresholds_changes_keep_their_values_exactly_once(services: LocalServices,
                                                          unique: str) -> None:
    """Each applied `stock.thresholds-set` leaves one row of its values and the ones it
    replaced, written with its batch: a change to the same values, the same event sent
    again, and every batch replayed from the start write none."""
    env = make_env(services, unique)
    key = "TH-1@WH-1"
    sets = [("t1", 30, 5), ("t2", 45, 8)]
    with processor_thread(env) as running, Publisher(env.settings) as pub:
        pub.publish("receipt.received", {"sku": "TH-1", "warehouse": "WH-1",
                                         "receipt_id": "r1", "quantity": 100})
        pub.flush()
        wait_drained(env)  # the key's first movement, before (another topic) its changes
        for ident, rp, ss in sets:
            pub.publish("stock.thresholds-set", {"sku": "TH-1", "warehouse": "WH-1",
                                                 "reorder_point": rp, "safety_stock": ss},
                        id_=ident)
        pub.publish("stock.thresholds-set", {"sku": "TH-1", "warehouse": "WH-1",
                                             "reorder_point": 30, "safety_stock": 5},
                    id_="t1")  # the first again: a duplicate
        pub.publish("stock.thresholds-set", {"sku": "TH-1", "warehouse": "WH-1",
                                             "reorder_point": 45, "safety_stock": 8},
                    id_="t3")  # the values in force: a no-op
        pub.flush()
        wait_drained(env)
        running.check()
    want = [("t1", 30, 5, 10, 0), ("t2", 45, 8, 30, 5)]  # a new key starts at 10 and 0

    def recorded() -> list[tuple[Any, ...]]:
        with env.db() as conn:
            return conn.execute(
                "SELECT event_id, reorder_point, safety_stock, previous_reorder_point,"
                " previous_safety_stock FROM threshold_history WHERE key = %s"
                " ORDER BY version", (key,)).fetchall()

    assert recorded() == want
    with env.db() as conn:
        versions = conn.execute(
            "SELECT h.version = l.version AND h.set_at = l.event_time FROM threshold_history h"
            " JOIN ledger l ON l.key = h.key AND l.event_id = h.event_id").fetchall()
        assert versions == [(True,), (True,)]  # each with its ledger row
        changes = demand.threshold_changes(conn, key)
        assert [(c.reorder_point, c.safety_stock) for c in changes] == [(10, 0), (30, 5),
                                                                        (45, 8)]
        # every batch replayed: the positions forgotten, the topics read from the start
        conn.execute("DELETE FROM consumer_offsets WHERE group_id = %s",
                     (env.settings.group_id,))
        conn.commit()
    with processor_thread(env) as running:
        wait_drained(env)
        running.check()
    assert recorded() == want
