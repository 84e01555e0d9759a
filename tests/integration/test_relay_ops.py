"""The relay as an operator reads it: queue gauges that count only what will be attempted,
and every log line a JSON object."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from stockflow.adapters.db import webhooks as hooks
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices, free_port
from stockflow.devtools.workload import Item
from tests.integration.harness import log_of, publish, start_logged
from tests.integration.test_webhooks import (
    _env,
    _vars,
    add,
    cli,
    relay,
    scrape,
    stop,
    until_received,
)
from tests.integration.webhook_receiver import receiver

PENDING, OLDEST, HELD = ("stockflow_webhook_queue_pending",
                         "stockflow_webhook_queue_oldest_due_seconds",
                         "stockflow_webhook_queue_held")


def _until_scraped(port: int, check: Callable[[dict[str, float]], bool],
                   proc: subprocess.Popen[bytes], seconds: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    figures: dict[str, float] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_of(proc)
        try:
            figures = scrape(port)
        except OSError:
            figures = {}
        if check(figures):
            return figures
        time.sleep(0.3)
    raise AssertionError(f"gauges never settled: {figures}")


def _events(unique: str, n: int) -> list[hooks.OutEvent]:
    at = datetime.now(UTC) - timedelta(hours=2)
    return [hooks.OutEvent(f"ev-{unique}-{i}", "stock.changed", "SKU-1@WH-1", at,
                           json.dumps({"id": f"ev-{unique}-{i}"}).encode()) for i in range(n)]


def test_queue_gauges_count_only_what_enabled_endpoints_will_attempt(
        services: LocalServices, unique: str) -> None:
    env = _env(services, unique)
    port = free_port()
    events = _events(unique, 5)
    with receiver() as rx:
        live, _ = add(env, rx.url("/live"), "*")
        off, _ = add(env, rx.url("/off"), "*")
        cli(env, "webhooks", "disable", off)
        with env.db() as conn:
            hooks.enqueue(conn, events, [(off, e.event_id) for e in events]
                          + [(live, e.event_id) for e in events[:2]])
            # the disabled endpoint's deliveries have been due for an hour: the old gauges
            # showed them as a late, growing queue nobody was going to send
            conn.execute("UPDATE webhook_deliveries SET next_at = now() - interval '1 hour'"
                         " WHERE endpoint_id = %s", (off,))
            conn.execute("UPDATE webhook_deliveries SET next_at = now() - interval '30 seconds'"
                         " WHERE endpoint_id = %s", (live,))
            depth = hooks.queue_depth(conn)
            assert (depth.pending, depth.held) == (2, 5)
            assert 29 <= depth.oldest_due < 120  # the enabled endpoint's, not the hour
            # the enabled endpoint's two are due later: pending, but nothing is late
            conn.execute("UPDATE webhook_deliveries SET next_at = now() + interval '1 hour'"
                         " WHERE endpoint_id = %s", (live,))
        rel = relay(env, metrics_port=port)
        try:
            figures = _until_scraped(port, lambda f: f.get(HELD) == 5, rel)
            assert (figures[PENDING], figures[OLDEST]) == (2, 0)
            # enabled again, its held deliveries are due and sent; the gauges follow
            cli(env, "webhooks", "enable", off)
            until_received(env, rx, "/off", {e.event_id for e in events}, [rel])
            figures = _until_scraped(port, lambda f: (f.get(HELD), f.get(PENDING)) == (0, 2),
                                     rel)
            assert figures[OLDEST] == 0
        finally:
            stop(rel)
    assert rx.to("/live") == []


def _not_json(line: str) -> bool:
    try:
        return not isinstance(json.loads(line), dict)
    except ValueError:
        return True


def test_every_relay_log_line_is_json(services: LocalServices, unique: str) -> None:
    env = _env(services, unique)
    events = _events(unique, 20)
    with receiver() as rx:
        add(env, rx.url("/all"), "*")
        # an endpoint receives what was emitted after it was added
        items = [Item(TopicKind.STOCK_CHANGED, e.subject.encode(), json.dumps({
            "specversion": "1.0", "id": e.event_id, "source": "tests", "type": e.type,
            "time": datetime.now(UTC).isoformat(), "subject": e.subject, "data": {}}).encode())
            for e in events]
        items.append(Item(TopicKind.STOCK_CHANGED, b"k", b"not an output event"))  # a warning
        # at DEBUG, aiokafka's own lines are written too (at INFO only its warnings)
        rel = start_logged("relay", {**_vars(env), "STOCKFLOW_LOG_FORMAT": "json",
                                     "STOCKFLOW_LOG_LEVEL": "DEBUG",
                                     "STOCKFLOW_RELAY_METRICS_PORT": str(free_port())},
                           with_stdout=True)
        try:
            publish(env, items)
            until_received(env, rx, "/all", {e.event_id for e in events}, [rel])
        finally:
            stop(rel)
    lines = log_of(rel, tail=None).splitlines()
    assert [line for line in lines if _not_json(line)] == []
    loggers = {json.loads(line)["logger"] for line in lines}
    # aiokafka's and aiohttp's own lines went through stockflow's JSON logging too
    assert {"stockflow.relay", "stockflow.engine.relay"} <= loggers
    assert any(name.startswith("aiokafka") for name in loggers), loggers
