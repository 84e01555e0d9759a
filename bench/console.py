"""Console page times at scale: `stockflow api` over 100,000 keys and a 1,000,000-row
ledger, each page asked again and again by one signed-in client.

    .venv/bin/python bench/console.py [--keys 100000] [--movements 10] [--requests 100]

The stock, ledger, alerts, orders and kept forecasts are written straight into Postgres
(the pages read them; how they got there does not matter here): `--keys` keys in 5
warehouses, each with `--movements` ledger rows spread over the past year (1,000,000 with
the defaults) and a kept forecast with its suggestion (a key's page draws it), every
tenth key low or out of stock, one key with 10,000 movements (its chart draws the newest
2,000), and 10,000 whole orders. For each page it prints the server's own time to begin
the answer (the `Server-Timing` header: from the request's arrival to the first byte,
rendering included) and the client's (over loopback: that plus HTTP), median, p95 and
max over `--requests` requests after 5 unmeasured ones. The target is p95 <= 200 ms of
server time on the 2-core development machine. The CSV download of all keys is timed
whole, once per run of requests, as its own line.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from statistics import median

import httpx
from common import pct, prepare, say, settings_for, start, wait_ready
from pydantic import SecretStr

from stockflow.adapters.db import api_keys, store
from stockflow.adapters.settings import Settings
from stockflow.contract.api_keys import new_token, token_hash
from stockflow.devtools.localenv import free_port, local_services

HOT = "HOT-1@WH-0"
HOT_MOVEMENTS = 10_000
ORDERS = 10_000
WARMUP = 5
TARGET_P95_MS = 200.0
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def _seed(s: Settings, keys: int, movements: int) -> None:
    """The stock, ledger, alerts, orders and kept forecasts the pages read, in a few
    set-based statements."""
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO stock (key, sku, warehouse, on_hand, reserved, in_transit, damaged,"
            " version, reorder_point, safety_stock, severity) SELECT"
            " 'SKU-' || lpad(i::text, 6, '0') || '@WH-' || i %% 5, 'SKU-' || lpad(i::text, 6,"
            " '0'), 'WH-' || i %% 5, CASE WHEN i %% 10 = 0 THEN i %% 3 ELSE 100 + i %% 900 END,"
            " i %% 7, 0, 0, %s, 10, 5, CASE WHEN i %% 20 = 0 THEN 'out_of_stock' WHEN i %% 10 = 0"
            " THEN 'low' ELSE 'ok' END FROM generate_series(1, %s) AS i", (movements, keys))
        conn.execute(
            "INSERT INTO stock (key, sku, warehouse, on_hand, reserved, in_transit, damaged,"
            " version, reorder_point, safety_stock, severity) VALUES (%s, 'HOT-1', 'WH-0',"
            " 500, 20, 0, 0, %s, 10, 5, 'ok')", (HOT, HOT_MOVEMENTS))
        conn.execute(
            "INSERT INTO ledger (key, version, event_id, event_type, reference, note,"
            " on_hand_before, on_hand_after, reserved_before, reserved_after,"
            " in_transit_before, in_transit_after, damaged_before, damaged_after, actor,"
            " event_time) SELECT s.key, v, s.key || ':' || v, 'receipt.received',"
            " 'receipt:' || v, NULL, v * 10, v * 10 + 10, 0, mod(v, 5), 0, 0, 0, 0,"
            " 'api-key:bench', now() - make_interval(secs => (s.version - v) * 31536000.0"
            " / s.version) FROM stock s, generate_series(1, s.version) AS v")
        conn.execute(
            "INSERT INTO low_stock_alerts (key, severity, available, reorder_point,"
            " cause_event_id) SELECT key, severity, available, reorder_point, key || ':1'"
            " FROM stock WHERE severity <> 'ok'")
        conn.execute(
            "INSERT INTO orders (order_id, phase, partition, state, created_at) SELECT"
            " 'O-' || i, 'confirmed', i %% 6, jsonb_build_object('parts', jsonb_build_array("
            "jsonb_build_object('line_id', '1', 'k', 1, 'sku', 'SKU-000001', 'warehouse',"
            " 'WH-1', 'quantity', 1, 'status', 'confirmed'))), now() - make_interval(secs"
            " => i) FROM generate_series(1, %s) AS i", (ORDERS,))
        # every key's kept forecast, as a `stockflow forecast --all` leaves them: a key's
        # page reads and draws it
        conn.execute(
            "INSERT INTO kept_forecasts SELECT key, current_date, now(), 'all', %s, true,"
            " 'profile_ses', 'smooth', array_fill(5.0::float8, ARRAY[14]),"
            " jsonb_build_object('80', jsonb_build_array(to_jsonb(array_fill(3.0, ARRAY[14])),"
            " to_jsonb(array_fill(7.0, ARRAY[14]))), '95', jsonb_build_array("
            "to_jsonb(array_fill(2.0, ARRAY[14])), to_jsonb(array_fill(9.0, ARRAY[14])))),"
            " array_fill(4.0::float8, ARRAY[28]), 7, 7, 0.95, 35.0, 15, 85, 85, on_hand,"
            " available, 0, 0, available, greatest(0, 85 - available), version FROM stock",
            (keys + 1,))
        conn.execute("ANALYZE")


def _signed_in(base: str, s: Settings) -> httpx.Client:
    made = new_token()
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
        api_keys.add(conn, key_id=made.id, name="bench", digest=token_hash(made.token),
                     scopes=["read"])
    client = httpx.Client(base_url=base, timeout=60)
    signed = client.post("/console/sign-in", data={"token": made.token})
    assert signed.status_code == 303, signed.text
    return client


def _timed(client: httpx.Client, path: str, n: int) -> tuple[list[float], list[float]]:
    """Server and client milliseconds of `n` requests of `path`."""
    server, seen = [], []
    for i in range(WARMUP + n):
        started = time.perf_counter()
        got = client.get(path)
        took = (time.perf_counter() - started) * 1000
        assert got.status_code == 200, (path, got.status_code, got.text[:300])
        if i >= WARMUP:
            found = _TIMING.search(got.headers.get("server-timing", ""))
            assert found, path
            server.append(float(found[1]))
            seen.append(took)
    return server, seen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--movements", type=int, default=10, help="ledger rows per key")
    p.add_argument("--requests", type=int, default=100, help="per page, after 5 unmeasured")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly, services too
    mid = args.keys // 2 + 1
    key = f"SKU-{mid:06d}@WH-{mid % 5}"
    pages = [("overview", "/console"), ("stock, first page", "/console/stock"),
             ("stock, SKU prefix", f"/console/stock?sku={key[:8]}"),
             ("stock, low at WH-1", "/console/stock?warehouse=WH-1&severity=low"),
             ("stock, a later page", f"/console/stock?after={key}"),
             ("a key", f"/console/keys/{key}"),
             ("a key at a past time", f"/console/keys/{key}?at=2026-06-01"),
             (f"a key with {HOT_MOVEMENTS:,} movements", f"/console/keys/{HOT}"),
             ("alerts", "/console/alerts"), ("orders", "/console/orders"),
             ("an order", "/console/orders/O-5000"), ("imports", "/console/imports")]
    rows: list[str] = []
    try:
        with local_services() as found:
            s = settings_for(Settings(kafka_bootstrap=found.kafka_bootstrap,
                                      database_url=SecretStr(found.database_url)), "console")
            prepare(s, 1)
            say(f"seeding {args.keys:,} keys, {args.keys * args.movements:,} ledger rows")
            _seed(s, args.keys, args.movements)
            port = free_port()
            api = start(s, "api", STOCKFLOW_API_HOST="127.0.0.1", STOCKFLOW_API_PORT=str(port),
                        STOCKFLOW_API_RATE_LIMIT="1000000", STOCKFLOW_API_RATE_BURST="1000000")
            wait_ready(f"http://127.0.0.1:{port}/readyz", api)
            client = httpx.Client()  # until signed in: nothing to close but itself
            try:
                client = _signed_in(f"http://127.0.0.1:{port}", s)
                for name, path in pages:
                    say(f"{name}: {args.requests} requests")
                    server, seen = _timed(client, path, args.requests)
                    met = "yes" if pct(server, 0.95) <= TARGET_P95_MS else "NO"
                    rows.append(f"  {name:<32} {median(server):7.1f} {pct(server, 0.95):7.1f}"
                                f" {max(server):7.1f}   {median(seen):7.1f}"
                                f" {pct(seen, 0.95):7.1f}   {met}")
                started = time.perf_counter()
                csv = client.get("/console/stock.csv")
                whole = time.perf_counter() - started
                rows.append(f"  stock.csv, all keys: {len(csv.content):,} bytes,"
                            f" {csv.text.count(chr(10)) - 1:,} rows in {whole:.2f} s")
            finally:
                client.close()
                api.send_signal(signal.SIGTERM)
                api.wait(60)
    except KeyboardInterrupt:
        say("stopped")
        return 130
    print(f"stockflow console page times ({os.cpu_count()} cores; API, Postgres and this "
          f"client on them)\n  {args.keys:,} keys, {args.keys * args.movements:,} + "
          f"{HOT_MOVEMENTS:,} ledger rows, {ORDERS:,} orders, {args.requests} requests a page")
    print(f"  {'page':<32} {'server ms: p50':>14} {'p95':>7} {'max':>7}   "
          f"{'client p50':>10} {'p95':>7}   p95 <= {TARGET_P95_MS:.0f}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
