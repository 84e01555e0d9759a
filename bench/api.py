"""HTTP API load benchmark: `stockflow api` (one uvicorn process) over a seeded stock
table, with `stockflow process` and `stockflow coordinate` running beside it.

    .venv/bin/python bench/api.py [--keys 10000] [--seconds 20] [--concurrency 32]
                                  [--write-rates 20,100] [--wait 5] [--import-rows 100000]

1. Reads: `--concurrency` clients on keep-alive connections, each asking
   `GET /v1/stock/{key}` for a random key again and again for `--seconds` (after 3 s
   unmeasured): reads/s, latency p50/p95/p99, and the CPU each part used per read.
2. Checkout, offered open-loop at each `--write-rates` per second for `--seconds`, three
   ways side by side: one line of one unit reserved directly (`order.placed` through
   `POST /v1/events?wait=…`, the processor's answer); a whole order of that line
   (`POST /v1/orders?wait=…`, pinned to its key's warehouse: the coordinator's batch, the
   processor's verdict, the coordinator's answer); a whole order of 3 lines of different
   SKUs, which the coordinator allocates across the warehouses that hold them. Latency
   p50/p95/p99 of each whole answer, the outcomes, and the ratios of the p99s. This is
   what an order service waits for at checkout.
3. Import: a CSV of `--import-rows` receipts over the seeded keys, through
   `stockflow import --wait` as a user would run it: the time to check every row, to
   publish them in one transaction, and for the processor to apply them all.
The client runs in this process on the same two cores as the API, the processor, the
broker and Postgres: it takes CPU from what it measures, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import aiohttp
from common import (
    committed,
    cpu_seconds,
    end_offsets,
    env_of,
    pct,
    prepare,
    say,
    settings_for,
    start,
    wait_ready,
)
from pydantic import SecretStr

from stockflow.adapters.db import api_keys, store, warehouses
from stockflow.adapters.kafka import produce_all, producer
from stockflow.adapters.settings import Settings
from stockflow.contract.api_keys import new_token, token_hash
from stockflow.contract.emit import Message
from stockflow.contract.events import envelope
from stockflow.contract.topics import TopicKind, Topics
from stockflow.devtools.localenv import free_port, local_services
from stockflow.domain.warehouses import Warehouse

WARMUP = 3.0


def _seed(s: Settings, topics: Topics, keys: list[str]) -> None:
    """A receipt of 1,000,000 units for every key: orders of one unit are always accepted."""
    prod = producer(s, {"linger.ms": 20})
    produce_all(prod, (Message(
        topics.name(TopicKind.RECEIPTS), key.encode(), json.dumps(envelope(
            "receipt.received", {"receipt_id": f"seed-{key}", "sku": key.split("@")[0],
                                 "warehouse": key.split("@")[1], "quantity": 1_000_000}),
            default=str).encode()) for key in keys))
    assert prod.flush(120) == 0


def _token(s: Settings) -> str:
    made = new_token()
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
        api_keys.add(conn, key_id=made.id, name="bench", digest=token_hash(made.token),
                     scopes=["read", "write"])
    return made.token


async def _reads(base: str, token: str, keys: list[str], concurrency: int,
                 seconds: float) -> tuple[list[float], Counter[int], float]:
    """Latencies (s) of the measured reads, their statuses, and the measured span."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter() + WARMUP
    end = start + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while (now := time.perf_counter()) < end:
            async with session.get(f"{base}/v1/stock/{random.choice(keys)}") as resp:
                await resp.read()
            done = time.perf_counter()
            if now >= start:
                latencies.append(done - now)
                statuses[resp.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return latencies, statuses, seconds


async def _checkouts(base: str, token: str, keys: list[str], rate: float, seconds: float,
                     wait: float, lines: int) -> tuple[list[float], Counter[str]]:
    """Open-loop checkouts at `rate`/s: latencies (s) and their outcomes. `lines` 0: one
    line reserved directly at its key (an `order.placed` through `POST /v1/events`, the
    processor's answer); 1: a whole order of that line, pinned to its key's warehouse; more:
    as many SKUs, allocated by the coordinator across the warehouses that hold them."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def order(session: aiohttp.ClientSession, n: int) -> None:
        order_id = f"bench-{lines}-{rate:g}-{n}"
        sku, warehouse = random.choice(keys).split("@")
        body: dict[str, object]
        if lines == 0:
            url, body = f"{base}/v1/events", {"type": "order.placed", "data": {
                "order_id": order_id, "line_id": "1", "sku": sku, "warehouse": warehouse,
                "quantity": 1}}
        else:
            wanted = ([{"line_id": "1", "sku": sku, "warehouse": warehouse, "quantity": 1}]
                      if lines == 1 else
                      [{"line_id": str(i), "sku": key.split("@")[0], "quantity": 1}
                       for i, key in enumerate(random.sample(keys, lines), 1)])
            url, body = f"{base}/v1/orders", {"order_id": order_id, "lines": wanted}
        sent = time.perf_counter()
        async with session.post(url, params={"wait": str(wait)}, json=body) as resp:
            got: dict[str, Any] = await resp.json()
        latencies.append(time.perf_counter() - sent)
        if resp.status != 202:
            outcomes[f"HTTP {resp.status}"] += 1
        else:
            outcomes[got["outcomes"][0]["outcome"] if lines == 0 else got["status"]] += 1

    async with aiohttp.ClientSession(headers=headers) as session:
        tasks, start, n = [], time.perf_counter(), 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(order(session, n)))
            n += 1
        await asyncio.gather(*tasks)
    return latencies, outcomes


def _import(s: Settings, keys: list[str], rows: int) -> list[str]:
    """`stockflow import --wait` of `rows` receipts; its own report of the times."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", prefix="receipts-") as f:
        f.write("sku,warehouse,quantity,po_id\n")
        f.writelines(f"{key.replace('@', ',')},{1 + i % 20},PO-{i}\n"
                     for i, key in enumerate(random.choices(keys, k=rows)))
        f.flush()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "stockflow", "import", f.name, "--kind",
                               "receipts", "--wait"], env=env_of(s), capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the import failed: {done.stderr[-2000:]}")
    return [f"  import of {rows:,} receipt rows (stockflow import --wait), "
            f"{time.perf_counter() - started:.1f} s in all:",
            *(f"    {line}" for line in done.stdout.splitlines())]


def _ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {pct(ms, 0.5):,.1f}  p95 {pct(ms, 0.95):,.1f}  p99 {pct(ms, 0.99):,.1f}  "
            f"max {max(ms):,.1f} ms")


def _checkout_report(base: str, token: str, keys: list[str], rates: list[float],
                     seconds: float, wait: float) -> list[str]:
    """Checkouts at each rate, side by side: one line reserved directly at its key, a
    whole order of that line, and whole orders of 3 lines the coordinator allocates."""
    report = []
    shapes = {0: "one line, directly (order.placed)", 1: "whole order, one pinned line",
              3: "whole order, 3 lines allocated"}
    for rate in rates:
        p99: dict[int, float] = {}
        for lines, what in shapes.items():
            say(f"checkout at {rate:g}/s: {what}, {seconds:.0f} s")
            lat, outcomes = asyncio.run(_checkouts(base, token, keys, rate, seconds, wait,
                                                   lines))
            p99[lines] = pct(lat, 0.99)
            report += [f"  checkout at {rate:g}/s, ?wait={wait:g}, {what}, {len(lat):,}: "
                       f"latency {_ms(lat)}", f"    outcomes {dict(outcomes)}"]
        report.append(f"    p99 of 3 lines / one line directly: {p99[3] / p99[0]:.2f}; "
                      f"/ one line as a whole order: {p99[3] / p99[1]:.2f}")
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--write-rates", default="20,100")
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--import-rows", type=int, default=100_000)
    args = p.parse_args()
    rates = [float(r) for r in args.write_rates.split(",") if r]
    keys = [f"SKU-{i}@WH-{i % 3}" for i in range(args.keys)]
    report = ["stockflow HTTP API benchmark",
              f"  machine: {os.cpu_count()} cores; broker, Postgres, processor, API (one "
              "uvicorn process) and this client on it"]
    with local_services() as found:
        s = settings_for(Settings(kafka_bootstrap=found.kafka_bootstrap,
                                  database_url=SecretStr(found.database_url)), "api")
        topics = prepare(s, 6)
        say(f"seeding {len(keys):,} keys")
        _seed(s, topics, keys)
        port = free_port()
        with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
            for code in sorted({key.split("@")[1] for key in keys}):
                warehouses.add(conn, Warehouse(code, code), actor="bench")
        processor = start(s, "process")
        coordinator = start(s, "coordinate", STOCKFLOW_COORDINATOR_METRICS_PORT="0")
        api = None
        try:
            target = end_offsets(s, topics)
            while committed(s, topics) < target:
                time.sleep(0.2)
            token = _token(s)
            api = start(s, "api", STOCKFLOW_API_HOST="127.0.0.1", STOCKFLOW_API_PORT=str(port),
                         STOCKFLOW_API_RATE_LIMIT="1000000000",
                         STOCKFLOW_API_RATE_BURST="1000000000")
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/readyz", api)
            say(f"reads: {args.concurrency} clients, {args.seconds:.0f} s")
            before = cpu_seconds()
            lat, statuses, span = asyncio.run(
                _reads(base, token, keys, args.concurrency, args.seconds))
            used = {role: cpu_seconds()[role] - n for role, n in before.items()}
            n = len(lat)
            per_read = "  ".join(f"{role} {used[role] / n * 1e6:,.0f}" for role in
                                 ("api", "postgres", "driver") if used[role])
            report += [f"  reads, GET /v1/stock/{{key}}, {args.concurrency} connections: "
                       f"{n / span:,.0f} reads/s over {span:.0f} s "
                       f"(statuses {dict(statuses)})",
                       f"    latency {_ms(lat)}",
                       f"    CPU per read, us (the client is the driver): {per_read}"]
            report += _checkout_report(base, token, keys, rates, args.seconds, args.wait)
            if args.import_rows:
                say(f"import: {args.import_rows:,} rows")
                report += _import(s, keys, args.import_rows)
        finally:
            for proc in (api, coordinator, processor):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
