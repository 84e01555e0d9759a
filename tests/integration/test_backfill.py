"""`stockflow simulate --backfill-days`: demand history published with past event times,
applied through the processor into the ledger in the order it happened (every shipment
after the receipt that stocked it), with lost demand kept apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from stockflow.devtools.localenv import LocalServices
from tests.integration.harness import Env, make_env, processor_thread, wait_drained


def test_backfill_lands_in_the_ledger_in_business_time(services: LocalServices,
                                                       unique: str) -> None:
    env = make_env(services, unique)
    # unpaced: the order must come from waiting for the processor, not from a slow pace
    args = ["simulate", "--backfill-days", "60", "--skus", "4", "--warehouses", "2",
            "--seed", "7", "--rate", "100000"]
    with processor_thread(env) as running:  # applying the history as it is published
        deadline = time.monotonic() + 60
        while not running.processor.health.assigned and time.monotonic() < deadline:
            time.sleep(0.1)
        done = _simulate(env, args)
        wait_drained(env)
        running.check()
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    sent = summary["published"]
    assert summary["days"] == 60 and sum(summary["keys"].values()) == 8
    assert summary["waits"] > 0
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with env.db() as db:
        rows = db.execute(
            "SELECT event_type, count(*), min(event_time), max(event_time), sum(lost)"
            " FROM ledger GROUP BY event_type"
        ).fetchall()
        got: dict[str, tuple[Any, ...]] = {str(r[0]): r[1:] for r in rows}
        shipped = got["shipment.dispatched"]
        assert shipped[0] == sent["shipment.dispatched"]
        assert got["receipt.received"][0] == sent["receipt.received"]
        # business time: the sixty days before today, not when the processor ran
        assert today - timedelta(days=60) <= shipped[1] and shipped[2] < today
        # demand that found no stock was placed and turned away, recorded as lost
        placed = got.get("order.placed")
        if sent.get("order.placed"):
            assert placed is not None and placed[3] > 0
        # each key's history applied in the order it happened: no shipment before the
        # receipt that stocked it (unvalued, overselling), no order before the shipment
        # that emptied the shelf (accepted instead of turned away)
        unvalued = db.execute(
            "SELECT count(*) FROM ledger WHERE event_type = 'shipment.dispatched'"
            " AND (value IS NULL OR unit_cost IS NULL OR unit_cost <= 0)").fetchone()
        assert unvalued == (0,)
        oversold = db.execute("SELECT count(*) FROM ledger WHERE on_hand_after < 0").fetchone()
        assert oversold == (0,)
        accepted = db.execute("SELECT count(*) FROM reservations WHERE status <> 'rejected'"
                              ).fetchone()
        assert accepted == (0,)
    # sent again, the same history is a counted duplicate: nothing moves twice
    with processor_thread(env) as running:
        _simulate(env, args)
        wait_drained(env)
        running.check()
    with env.db() as db:
        row = db.execute("SELECT count(*) FROM ledger WHERE event_type = 'shipment.dispatched'"
                         ).fetchone()
        assert row is not None and row[0] == sent["shipment.dispatched"]


def _simulate(env: Env, args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "stockflow", *args],
                          env={**os.environ, **env.env_vars}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done
