"""The HTTP API through a real uvicorn server (`stockflow api` as a child process) on the
session's Kafka and Postgres: authentication, every read route against Postgres, ETags,
keyset pages while writes go on, and time travel against a replay of the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

import httpx

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.publisher import Publisher
from stockflow.devtools.localenv import LocalServices, free_port
from stockflow.devtools.workload import generate
from stockflow.entrypoints.app import build_coordinator
from tests.factories import wh
from tests.integration.harness import (
    Env,
    log_of,
    make_env,
    processor_thread,
    publish,
    start_logged,
    wait_drained,
)


def cli(env: Env, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "stockflow", *args],
                          env={**os.environ, **env.env_vars}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def new_key(env: Env, name: str, scopes: str) -> tuple[str, str]:
    """(key id, token) of a new API key."""
    words = dict(line.split()[:2] for line in cli(env, "apikeys", "create", "--name", name,
                                                  "--scopes", scopes).splitlines())
    return words["key"], words["token"]


@contextmanager
def api_server(env: Env, **settings: str) -> Iterator[httpx.Client]:
    """`stockflow api` on a free port; a client for it (no auth header set)."""
    port = free_port()
    proc = start_logged("api", {
        **os.environ, **env.env_vars, "STOCKFLOW_API_HOST": "127.0.0.1",
        "STOCKFLOW_API_PORT": str(port), "STOCKFLOW_LOG_LEVEL": "WARNING", **settings})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=40)  # > ?wait=30
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_of(proc)
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        assert proc.wait(30) == 0, log_of(proc)
        assert "sfk_" not in log_of(proc, tail=None)  # no token ever reaches the log


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _seeded(services: LocalServices, unique: str) -> tuple[Env, list[str]]:
    env = make_env(services, unique)
    workload = generate(events=1500, skus=20, warehouses=3, seed=61)
    with processor_thread(env) as running:
        publish(env, workload.setup + workload.stream)
        wait_drained(env)
        running.check()
    return env, workload.keys


def _stock_rows(env: Env) -> dict[str, dict[str, Any]]:
    with env.db() as conn:
        cur = conn.execute("SELECT key, sku, warehouse, on_hand, reserved, available,"
                           " in_transit, damaged, version, severity FROM stock")
        names = [d.name for d in cur.description or []]
        return {str(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_authentication_scopes_and_rate_limits(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    key_id, reader = new_key(env, "storefront", "read")
    _, writer = new_key(env, "wms", "write")
    _, admin = new_key(env, "ops", "admin")
    with api_server(env, STOCKFLOW_API_RATE_LIMIT="2", STOCKFLOW_API_RATE_BURST="5") as api:
        path = "/v1/stock/NOPE@W1"
        altered = reader[:-1] + ("B" if reader.endswith("A") else "A")  # one character off
        for headers in ({}, bearer("sfk_nope"), bearer(reader + "x"),
                        {"Authorization": f"Basic {reader}"}, bearer(altered)):
            r = api.get(path, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        assert api.get(path, headers=bearer(writer)).status_code == 403
        assert api.get(path, headers=bearer(admin)).status_code == 404  # admin reads too
        # the burst of 5 (one spent above by admin, which has its own bucket), then 429
        codes = [api.get(path, headers=bearer(reader)).status_code for _ in range(8)]
        assert codes[:5] == [404] * 5 and 429 in codes[5:], codes
        limited = api.get(path, headers=bearer(reader))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        time.sleep(1.5)  # 2 requests/s refill
        assert api.get(path, headers=bearer(reader)).status_code == 404
        listed = cli(env, "apikeys", "list", "--json")
        assert "sfk_" not in listed and key_id in listed
        cli(env, "apikeys", "revoke", key_id)
        time.sleep(5.5)  # a key's row is trusted for 5 s
        assert api.get(path, headers=bearer(reader)).status_code == 401


def test_reads_agree_with_postgres(services: LocalServices, unique: str) -> None:
    env, keys = _seeded(services, unique)
    _, token = new_key(env, "reader", "read")
    auth = bearer(token)
    rows = _stock_rows(env)
    with api_server(env) as api:
        key = keys[0]
        r = api.get(f"/v1/stock/{key}", headers=auth)
        assert r.status_code == 200
        body = r.json()
        assert {k: body[k] for k in rows[key]} == rows[key]
        assert r.headers["etag"] == f'"{rows[key]["version"]}"'
        again = api.get(f"/v1/stock/{key}", headers={**auth, "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        stale = api.get(f"/v1/stock/{key}", headers={**auth, "If-None-Match": '"0"'})
        assert stale.status_code == 200
        assert api.get("/v1/stock/NOPE@W9", headers=auth).status_code == 404
        assert api.get("/v1/stock/no-at-sign", headers=auth).status_code == 422

        sku = rows[key]["sku"]
        got = api.get(f"/v1/skus/{sku}", headers=auth).json()
        mine = [v for v in rows.values() if v["sku"] == sku]
        assert {w["key"] for w in got["warehouses"]} == {v["key"] for v in mine}
        assert got["totals"]["on_hand"] == sum(v["on_hand"] for v in mine)

        low = api.get("/v1/stock", params={"severity": "out_of_stock", "limit": 1000},
                      headers=auth).json()
        assert {i["key"] for i in low["items"]} == {
            k for k, v in rows.items() if v["severity"] == "out_of_stock"}

        alerts = api.get("/v1/alerts", headers=auth).json()["items"]
        with env.db() as conn:
            open_ = {str(k) for (k,) in conn.execute("SELECT key FROM low_stock_alerts")}
            order_id, lines = conn.execute(
                "SELECT order_id, count(*) FROM reservations GROUP BY order_id"
                " ORDER BY count(*) DESC, order_id LIMIT 1").fetchone() or ("", 0)
        assert {a["key"] for a in alerts} == open_
        ranks = [(a["severity"] != "out_of_stock", a["available"]) for a in alerts]
        assert ranks == sorted(ranks)  # most critical first
        order = api.get(f"/v1/orders/{order_id}", headers=auth).json()
        assert len(order["lines"]) == lines
        assert api.get("/v1/orders/no-such-order", headers=auth).status_code == 404

        metrics = api.get("/metrics").text
        assert 'route="/v1/stock/{key}"' in metrics and 'status="304"' in metrics


def test_pages_have_no_gaps_or_repeats_while_writes_go_on(services: LocalServices,
                                                           unique: str) -> None:
    env, _ = _seeded(services, unique)
    _, token = new_key(env, "reader", "read")
    before = set(_stock_rows(env))
    stop = threading.Event()

    def write() -> None:  # new keys, before and after the cursor, and changes to old ones
        with Publisher(env.settings, source="test") as pub:
            i = 0
            while not stop.is_set():
                for sku in (f"AAA-{i}", f"ZZZ-{i}", sorted(before)[i % len(before)].split("@")[0]):
                    pub.publish("receipt.received", {"receipt_id": f"R{unique}{i}{sku}",
                                                     "sku": sku, "warehouse": "WH-1",
                                                     "quantity": 1})
                i += 1
                time.sleep(0.02)

    with api_server(env) as api, processor_thread(env) as running:
        writer = threading.Thread(target=write)
        writer.start()
        try:
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 7}
                if cursor:
                    params["cursor"] = cursor
                page = api.get("/v1/stock", params=params, headers=bearer(token)).json()
                seen += [i["key"] for i in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
                time.sleep(0.01)
        finally:
            stop.set()
            writer.join()
        running.check()
    assert len(seen) == len(set(seen)), "a key was listed twice"
    assert before <= set(seen), f"missing: {sorted(before - set(seen))[:5]}"
    assert seen == sorted(seen)


def test_ledger_pages_and_time_travel_agree_with_a_replay(services: LocalServices,
                                                          unique: str) -> None:
    env, _ = _seeded(services, unique)
    _, token = new_key(env, "reader", "read")
    with env.db() as conn:
        key = str((conn.execute("SELECT key FROM ledger GROUP BY key ORDER BY count(*) DESC"
                                " LIMIT 1").fetchone() or ("",))[0])
        ledger = cast(list[tuple[int, datetime, int, int, int, int]], conn.execute(
            "SELECT version, coalesce(event_time, recorded_at), on_hand_after - on_hand_before,"
            " reserved_after - reserved_before, in_transit_after - in_transit_before,"
            " damaged_after - damaged_before FROM ledger WHERE key = %s ORDER BY version",
            (key,)).fetchall())
    assert len(ledger) > 20
    with api_server(env) as api:
        versions: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 9, **({"cursor": cursor} if cursor else {})}
            page = api.get(f"/v1/stock/{key}/ledger", params=params,
                           headers=bearer(token)).json()
            versions += [m["version"] for m in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert versions == [v for v, *_ in ledger]
        # the quantities at instants of business time around every few movements: after
        # the last version applied among the movements that had happened by then, replayed
        # independently as the sums of the deltas of every version up to it
        times = [row[1] for row in ledger]
        instants = [min(times) - timedelta(seconds=1), *times[::5],
                    max(times) + timedelta(seconds=1)]
        for at in instants:
            last = max((row[0] for row in ledger if row[1] <= at), default=0)
            upto = [row for row in ledger if row[0] <= last]
            want = [sum(r[2] for r in upto), sum(r[3] for r in upto),
                    sum(r[4] for r in upto), sum(r[5] for r in upto)]
            got = api.get(f"/v1/stock/{key}/at", params={"time": at.isoformat()},
                          headers=bearer(token)).json()
            assert [got["on_hand"], got["reserved"], got["in_transit"], got["damaged"]] \
                == want, at
            assert got["available"] == want[0] - want[1]
            assert got["version"] == last


def test_writes_become_events_once_and_wait_for_the_outcome(services: LocalServices,
                                                           unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "storefront", "read")
    w, r = bearer(writer), bearer(reader)

    def stock(api: httpx.Client, key: str) -> dict[str, Any]:
        got = api.get(f"/v1/stock/{key}", headers=r)
        assert got.status_code == 200, got.text
        return dict(got.json())

    with api_server(env) as api, processor_thread(env) as running:
        receipt = {"sku": "API-1", "warehouse": "WH-1", "quantity": 10}
        first = api.post("/v1/receipts", json=receipt, params={"wait": 15},
                         headers={**w, "Idempotency-Key": "delivery-77"})
        assert first.status_code == 202, first.text
        assert [o["outcome"] for o in first.json()["outcomes"]] == ["applied"]
        again = api.post("/v1/receipts", json=receipt, params={"wait": 15},
                         headers={**w, "Idempotency-Key": "delivery-77"})
        assert again.json()["event_ids"] == first.json()["event_ids"]
        assert stock(api, "API-1@WH-1")["on_hand"] == 10  # the retry moved nothing

        counted = api.post("/v1/counts", params={"wait": 15}, headers=w,
                           json={"sku": "API-1", "warehouse": "WH-1", "on_hand": 7})
        assert counted.json()["outcomes"][0]["outcome"] == "applied"
        api.post("/v1/adjustments", params={"wait": 15}, headers=w,
                 json={"sku": "API-1", "warehouse": "WH-1", "delta": -3, "reason": "broken"})
        assert stock(api, "API-1@WH-1")["on_hand"] == 4
        below = api.post("/v1/adjustments", params={"wait": 15}, headers=w,
                         json={"sku": "API-1", "warehouse": "WH-1", "delta": -100,
                               "reason": "typo"})
        refused = below.json()["outcomes"][0]
        assert refused["outcome"] == "rejected", below.text  # at once, not after 15 s
        assert refused["reason"].startswith("negative_result")

        # a whole order, through the coordinator: all lines reserved, or none
        with env.db() as conn:
            warehouses_db.add(conn, wh("WH-1", 1), actor="test")
        with processor_thread(env, build_coordinator):
            order = api.post("/v1/orders", params={"wait": 15}, headers=w, json={
                "order_id": f"O-{unique}", "lines": [
                    {"line_id": "1", "sku": "API-1", "quantity": 3}]})
            assert order.status_code == 202, order.text
            answer = order.json()
            assert answer["status"] == "allocated", answer
            assert answer["lines"][0]["allocations"] == [
                {"warehouse": "WH-1", "line_id": "1~1", "quantity": 3}]
            short = api.post("/v1/orders", params={"wait": 15}, headers=w, json={
                "order_id": f"S-{unique}", "lines": [
                    {"line_id": "1", "sku": "API-1", "quantity": 1},
                    {"line_id": "big", "sku": "API-1", "quantity": 50}]}).json()
            assert (short["status"], short["reason"]) == ("rejected", "insufficient_stock")
            assert [(ln["line_id"], ln["allocatable"]) for ln in short["lines"]] == [
                ("1", 1), ("big", 0)]
            # the same order again: its first answer; another body under its id: 409
            again = api.post("/v1/orders", params={"wait": 15}, headers=w, json={
                "order_id": f"O-{unique}", "lines": [
                    {"line_id": "1", "sku": "API-1", "quantity": 3}]}).json()
            assert again["status"] == "allocated"
            conflict = api.post("/v1/orders", headers=w, json={
                "order_id": f"O-{unique}", "lines": [
                    {"line_id": "1", "sku": "API-1", "quantity": 4}]})
            assert conflict.status_code == 409, conflict.text
            seen = api.get(f"/v1/orders/O-{unique}", headers=r).json()
            assert seen["phase"] == "allocated" and [p["status"] for p in seen["parts"]] == [
                "accepted"]
            assert [h["type"] for h in seen["history"]] == ["order.allocated"]
        assert stock(api, "API-1@WH-1")["reserved"] == 3

        # invalid: 422 naming the reason, and nothing of the request is published
        bad = api.post("/v1/events", headers=w, json=[
            {"type": "receipt.received", "data": {"receipt_id": "ok", "sku": "API-2",
                                                  "warehouse": "WH-1", "quantity": 5}},
            {"type": "receipt.received", "data": {"receipt_id": "bad", "sku": "API-2",
                                                  "warehouse": "WH-1", "quantity": 0}}])
        assert bad.status_code == 422 and "quantity_out_of_range" in bad.text, bad.text
        good = api.post("/v1/events", params={"wait": 15}, headers=w, json=[
            {"type": "receipt.received", "data": {"receipt_id": "g1", "sku": "API-3",
                                                  "warehouse": "WH-1", "quantity": 5}},
            {"type": "stock.thresholds-set", "data": {"sku": "API-3", "warehouse": "WH-1",
                                                      "reorder_point": 4, "safety_stock": 1}}])
        assert [o["outcome"] for o in good.json()["outcomes"]] == ["applied", "applied"]
        got = stock(api, "API-3@WH-1")
        assert (got["on_hand"], got["reorder_point"]) == (5, 4)
        assert api.get("/v1/stock/API-2@WH-1", headers=r).status_code == 404
        assert api.post("/v1/receipts", json=receipt, headers=r).status_code == 403
        # who did it: every movement names the writing key, at its event's own time
        history = api.get("/v1/stock/API-1@WH-1/ledger", headers=r).json()["items"]
        assert [(m["event_type"], m["actor"]) for m in history] == [
            ("receipt.received", "api-key:wms"), ("stock.counted", "api-key:wms"),
            ("stock.adjusted", "api-key:wms"),
            # the allocated order's part, placed by the coordinator for the key that
            # requested the order; the rejected order placed nothing at all
            ("order.placed", "stockflow-coordinator/api-key:wms")]
        assert all(datetime.fromisoformat(m["event_time"])
                   <= datetime.fromisoformat(m["recorded_at"]) for m in history)
        running.check()
    with env.db() as conn:
        touched = {str(k) for (k,) in conn.execute(
            "SELECT DISTINCT key FROM processed_events")}
    assert touched == {"API-1@WH-1", "API-3@WH-1"}  # nothing of the invalid request
