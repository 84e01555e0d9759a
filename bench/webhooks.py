"""Webhook delivery benchmark: `stockflow relay` sending to a local receiver.

    .venv/bin/python bench/webhooks.py [--endpoints 16] [--backlog 20000] [--rate 50]
                                       [--seconds 20]

1. Backlog: `--backlog` deliveries (events x endpoints) are queued in Postgres before the
   relay starts; it sends them all. Deliveries/s from the first to the last received.
2. Paced: output events are produced onto the stock-changed topic at `--rate` events/s,
   each matched by every endpoint, for `--seconds`. Latency per delivery from the event's
   `time` (set when it was produced) to the receiver: topic -> intake -> queue -> attempt
   -> receiver; p50/p95/p99, and the deliveries/s sustained.
The receiver (an aiohttp server in its own process) answers 204 at once, so the figures
are the relay's. The relay runs with its default concurrency (STOCKFLOW_WEBHOOK_*).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from common import env_of, pct, prepare, say, settings_for
from pydantic import SecretStr

from stockflow.adapters.db import store
from stockflow.adapters.db import webhooks as hooks
from stockflow.adapters.kafka import produce_all, producer
from stockflow.adapters.secrets import SecretBox
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message
from stockflow.contract.topics import TopicKind, Topics
from stockflow.contract.webhooks import new_secret
from stockflow.devtools.localenv import free_port, local_services

KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def sink(port: int) -> None:
    """The receiver: counts deliveries and the latency from each event's time."""
    from aiohttp import web  # noqa: PLC0415 - only the sink process needs the server side

    got: list[float] = []

    async def post(request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        got.append(time.time() - datetime.fromisoformat(doc["time"]).timestamp())
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response({"count": len(got), "at": time.monotonic(),
                                  "latencies": got[since:] if "latencies" in request.query
                                  else []})

    app = web.Application()
    app.router.add_post("/{name}", post)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _stats(port: int, query: str = "") -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats{query}", timeout=10) as r:
        return dict(json.loads(r.read()))


def _count(port: int) -> int:
    return int(_stats(port)["count"])


def _latencies(port: int, since: int) -> list[float]:
    """Seconds from event time to receipt of the deliveries after the first `since`."""
    return [float(x) for x in _stats(port, f"?latencies=1&since={since}")["latencies"]]


def _event(key: str) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": "stock.changed",
        "source": "bench", "subject": key, "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"sku": key.partition("@")[0], "warehouse": "W1", "on_hand": 5, "reserved": 0,
                 "available": 5, "version": 1}}).encode()


def _register(s: Settings, port: int, endpoints: int) -> None:
    box = SecretBox.from_setting(KEY)
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
        for i in range(endpoints):
            endpoint_id = f"ep_bench{i}"
            hooks.add_endpoint(conn, endpoint_id=endpoint_id, url=f"http://127.0.0.1:{port}/e{i}",
                               events=["stock.changed"], keys=["*"], description="bench",
                               sealed=box.seal(new_secret(), endpoint_id.encode()))


def _queue_backlog(s: Settings, events: int, endpoints: int) -> None:
    evs = [hooks.OutEvent(str(uuid.uuid4()), "stock.changed", f"SKU-{i}@W1",
                          datetime.now(UTC), _event(f"SKU-{i}@W1")) for i in range(events)]
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn, \
            conn.transaction():
        hooks.enqueue(conn, evs, [(f"ep_bench{e}", ev.event_id) for ev in evs
                                  for e in range(endpoints)])


def _until(port: int, target: int, label: str, relay: subprocess.Popen[bytes],
           stall: float = 60) -> tuple[float, float]:
    """Wait until the sink has `target` deliveries: (first seen, last) monotonic times."""
    first = last = None
    seen, moved, shown = 0, time.monotonic(), 0.0
    while seen < target:
        if relay.poll() is not None:
            raise SystemExit("the relay exited")
        n = _count(port)
        now = time.monotonic()
        if n and first is None:
            first = now
        if n != seen:
            seen, moved, last = n, now, now
        if now - moved > stall:
            raise SystemExit(f"{label}: no progress for {stall:.0f} s at {seen:,}/{target:,}")
        if now - shown > 2:
            say(f"  {label}: {seen:,}/{target:,} delivered")
            shown = now
        time.sleep(0.05)
    assert first is not None
    assert last is not None
    return first, last


def _paced(s: Settings, topics: Topics, port: int, relay: subprocess.Popen[bytes],
           rate: int, seconds: float, endpoints: int) -> tuple[int, float, list[float]]:
    """Produce output events at `rate` for `seconds`; (events sent, deliveries/s
    sustained, latencies in seconds) once every delivery has arrived."""
    before = _count(port)
    prod = producer(s, {"linger.ms": 5})
    topic = topics.name(TopicKind.STOCK_CHANGED)
    sent, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if (due := int(elapsed * rate) - sent) > 0:
            keys = [f"SKU-{sent + i}@W1" for i in range(due)]
            produce_all(prod, (Message(topic, k.encode(), _event(k)) for k in keys))
            sent += due
            prod.poll(0)
        time.sleep(0.005)
    assert prod.flush(30) == 0
    _, last = _until(port, before + sent * endpoints, "paced", relay)
    return sent, sent * endpoints / max(last - started, 1e-9), _latencies(port, before)


def _stages(s: Settings, since: datetime) -> list[float]:
    """p50 and p99 in ms of the two halves of the paced deliveries' latency: event time to
    queued (the intake) and queued to delivered (the delivery loop and the receiver)."""
    with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
        row = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
            " extract(epoch FROM d.created_at - v.time)),"
            " percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
            " extract(epoch FROM d.delivered_at - d.created_at))"
            " FROM webhook_deliveries d JOIN webhook_events v USING (event_id)"
            " WHERE v.time >= %s", (since,)).fetchone()
    assert row is not None
    return [x * 1000 for x in (*row[0], *row[1])]


def _start_relay(s: Settings, metrics_port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "stockflow", "relay"],
        env=env_of(s, STOCKFLOW_SECRET_KEY=KEY, STOCKFLOW_WEBHOOK_ALLOW_HTTP="true",
                   STOCKFLOW_WEBHOOK_ALLOW_NETWORKS="127.0.0.1/32",
                   STOCKFLOW_RELAY_GROUP_ID=f"{s.group_id}-relay",
                   STOCKFLOW_RELAY_METRICS_PORT=str(metrics_port)),
        stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", type=int, default=16)
    ap.add_argument("--backlog", type=int, default=20_000, help="deliveries queued up front")
    ap.add_argument("--rate", type=int, default=50, help="paced output events/s")
    ap.add_argument("--seconds", type=float, default=20, help="of paced load")
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args()
    events = max(1, args.backlog // args.endpoints)
    backlog = events * args.endpoints

    with local_services() as found:
        base = Settings(kafka_bootstrap=found.kafka_bootstrap,
                        database_url=SecretStr(found.database_url))
        s = settings_for(base, "hooks")
        topics = prepare(s, args.partitions)
        port = free_port()
        receiver = subprocess.Popen([sys.executable, __file__, "--sink", str(port)])
        relay = None
        try:
            _register(s, port, args.endpoints)
            _queue_backlog(s, events, args.endpoints)
            while receiver.poll() is None:
                with contextlib.suppress(OSError):
                    _count(port)
                    break
                time.sleep(0.1)
            relay = _start_relay(s, free_port())
            say(f"backlog: {backlog:,} deliveries to {args.endpoints} endpoints")
            first, last = _until(port, backlog, "backlog", relay)
            say(f"paced: {args.rate}/s output events x {args.endpoints} endpoints, "
                f"{args.seconds:.0f} s")
            paced_from = datetime.now(UTC)
            sent, sustained, lat = _paced(s, topics, port, relay, args.rate, args.seconds,
                                          args.endpoints)
            stages = _stages(s, paced_from)
        finally:
            for p in (relay, receiver):
                if p is not None:
                    p.send_signal(signal.SIGTERM)
                    p.wait(60)
    ms = [x * 1000 for x in lat]
    defaults = Settings()
    print("\n".join([
        "stockflow webhook delivery benchmark",
        f"  machine: {os.cpu_count()} cores; broker, Postgres, the relay and the receiver on it",
        f"  relay: {args.endpoints} endpoints; at most {defaults.webhook_endpoint_concurrency}"
        f" attempts in flight per endpoint, {defaults.webhook_concurrency} in all",
        f"  backlog: {backlog:,} deliveries in {last - first:.1f} s: "
        f"{(backlog - 1) / max(last - first, 1e-9):,.0f} deliveries/s",
        f"  paced: {sent:,} events x {args.endpoints} endpoints = {len(ms):,} deliveries, "
        f"{sustained:,.0f} deliveries/s sustained",
        f"  latency, event time -> received, ms: p50 {pct(ms, 0.5):,.0f}  "
        f"p95 {pct(ms, 0.95):,.0f}  p99 {pct(ms, 0.99):,.0f}  max {max(ms):,.0f}",
        f"    of which event time -> queued (intake) p50 {stages[0]:,.0f}  p99 {stages[1]:,.0f};"
        f" queued -> delivered p50 {stages[2]:,.0f}  p99 {stages[3]:,.0f}",
    ]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sink":
        sink(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
