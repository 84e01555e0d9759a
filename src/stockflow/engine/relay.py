"""The webhook relay: a faust-streaming app, apart from the processor's exactly-once path.

Intake (a faust agent over the output topics, in batches): each output event is matched
against the endpoints' event and key patterns and, in one Postgres transaction, stored
and queued once per matching enabled endpoint (`ON CONFLICT DO NOTHING`: a batch read
again after a crash or rebalance queues nothing twice). faust commits the batch's offsets
only after that, so nothing read is lost: at least once into an idempotent queue.
A Postgres outage holds the intake where it is (`DbLink`) until the batch is written.
An endpoint receives the events emitted since it was added; older stored events can be
replayed to it (`stockflow webhooks replay`).

Delivery (a faust task running `Dispatcher`): see `stockflow.engine.dispatch`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from functools import partial
from typing import Any

import faust

from stockflow.adapters.db import webhooks as store
from stockflow.adapters.db.store import Conn
from stockflow.adapters.health import Health
from stockflow.adapters.relay_metrics import RelayMetrics
from stockflow.contract.topics import TopicKind, Topics
from stockflow.domain.webhooks import matches
from stockflow.engine.db_link import DbLink
from stockflow.engine.dispatch import Directory, Dispatcher

__all__ = ["RELAYED", "build_relay", "matched", "read_event"]

log = logging.getLogger("stockflow.engine.relay")

# The output topics whose events can be sent to endpoints (the DLQ holds inputs, not outputs):
# the stock processor's, and the order coordinator's statuses (so a shop that only speaks
# HTTP learns of an order rejected as stock_lost).
RELAYED = (TopicKind.STOCK_CHANGED, TopicKind.LOW_STOCK, TopicKind.OVERSELL,
           TopicKind.RESERVATIONS, TopicKind.ORDER_STATUS)
BATCH, WITHIN = 500, 0.02  # events per intake transaction, seconds to wait for a fuller one


def read_event(value: bytes) -> store.OutEvent | None:
    """The fields matching needs from an output CloudEvent; None if it is not one. Its key
    is the `subject`; for reservation events (keyed by order) the line's SKU@WAREHOUSE; for
    order statuses the order_id."""
    try:
        doc = json.loads(value)
        data = doc["data"]
        key = doc.get("subject") or (f"{data['sku']}@{data['warehouse']}" if "sku" in data
                                     else data["order_id"])
        ev = store.OutEvent(event_id=str(doc["id"]), type=str(doc["type"]), subject=str(key),
                            time=datetime.fromisoformat(str(doc["time"])), body=value)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    # Postgres text cannot hold NUL; a time without its zone cannot be ordered
    if ev.time.tzinfo is None or "\x00" in ev.event_id + ev.type + ev.subject:
        return None
    return ev


def matched(endpoints: list[store.Endpoint], events: list[store.OutEvent]) -> tuple[
        list[store.OutEvent], list[tuple[str, str]]]:
    """The events any endpoint wants (kept for replays even while it is disabled) and the
    (endpoint id, event id) deliveries due to enabled endpoints."""
    keep: dict[str, store.OutEvent] = {}
    pairs: list[tuple[str, str]] = []
    for ev in events:
        for ep in endpoints:
            if ev.time < ep.created_at or not matches(ep.event_patterns, ev.type) \
                    or not matches(ep.key_patterns, ev.subject):
                continue
            keep[ev.event_id] = ev
            if ep.state == "enabled":
                pairs.append((ep.id, ev.event_id))
    return list(keep.values()), pairs


def build_relay(*, app_id: str, bootstrap: str, topics: Topics, db: DbLink,
                directory: Directory, dispatcher: Dispatcher, metrics: RelayMetrics,
                health: Health, datadir: str, session_timeout: float) -> faust.App:
    """The relay app: intake agent (its Postgres calls through `db`) and delivery task
    (see the module docstring). `session_timeout` (seconds): how soon a relay that died
    loses its partitions."""
    app = faust.App(app_id, broker=[f"kafka://{h}" for h in bootstrap.split(",")],
                    store="memory://", consumer_auto_offset_reset="earliest",
                    broker_commit_interval=1.0, web_enabled=False, autodiscover=False,
                    broker_session_timeout=session_timeout,
                    # as the processor: Kafka's 3 s at most, so a rebalance is heard soon
                    broker_heartbeat_interval=min(3.0, max(0.5, session_timeout / 5)),
                    datadir=datadir,
                    # faust-streaming can drop a stream's in-flight messages when a rebalance
                    # follows right after start-up (its issue #596); start streams only once
                    # an assignment has held for 4 s (what the benchmark's faust peer needed).
                    stream_recovery_delay=4.0)
    source = app.topic(*(topics.name(k) for k in RELAYED), key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    async def on_assigned(_app: Any, /, *args: Any, signal: Any, **_: Any) -> None:  # noqa: ARG001
        health.assigned = bool(args and args[0])

    app.on_partitions_assigned.connect(on_assigned)

    @app.agent(source, concurrency=1)
    async def intake(stream: faust.StreamT[bytes]) -> None:
        try:
            await directory.loaded.wait()
            # take_events (whole events: their topic, partition and offset) is in faust-streaming
            # but not in its StreamT stubs
            async for batch in stream.take_events(  # type: ignore[attr-defined]
                    BATCH, within=WITHIN):
                events = []
                for ev in batch:
                    got = read_event(ev.message.value or b"")
                    if got is None:
                        log.warning("not an output event at %s[%d]@%d: skipped",
                                    ev.message.topic, ev.message.partition, ev.message.offset)
                    else:
                        events.append(got)
                keep, pairs = matched(directory.endpoints(), events)
                metrics.read.labels("unreadable").inc(len(batch) - len(events))
                metrics.read.labels("matched").inc(len(keep))
                metrics.read.labels("unmatched").inc(len(events) - len(keep))
                if keep:
                    metrics.queued.inc(await db.call(partial(_enqueue, events=keep,
                                                             pairs=pairs)))
                    dispatcher.poke()
        finally:
            await db.close()

    @app.task  # type: ignore[untyped-decorator]
    async def deliver() -> None:
        # faust cancels its tasks when the worker stops: the dispatcher then writes back
        # what its attempts in flight got before it returns
        await dispatcher.run(asyncio.Event())

    return app


def _enqueue(conn: Conn, events: list[store.OutEvent], pairs: list[tuple[str, str]]) -> int:
    with conn.transaction():
        return store.enqueue(conn, events, pairs)
