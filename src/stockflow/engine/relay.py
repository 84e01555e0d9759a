"""The webhook relay: an asyncio service apart from the processor's exactly-once path.

Intake (`Intake`, an aiokafka consumer group over the output topics, committed outputs
only): each batch read is matched against the endpoints' event and key patterns and, in
one Postgres transaction, stored and queued once per matching enabled endpoint
(`ON CONFLICT DO NOTHING`: a batch read again after a crash or rebalance queues nothing
twice). Its offsets are committed only after that, by the same loop that reads, so no
batch is ever half taken in when a rebalance comes: at least once into an idempotent
queue. A Postgres outage holds the intake where it is (`DbLink`) until the batch is
written. An endpoint receives the events emitted since it was added; older stored events
can be replayed to it (`stockflow webhooks replay`).

Delivery (`Dispatcher`, beside it on the same event loop): see `stockflow.engine.dispatch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from stockflow.adapters.db import webhooks as store
from stockflow.adapters.db.store import Conn
from stockflow.adapters.health import Health
from stockflow.adapters.relay_metrics import RelayMetrics
from stockflow.contract.topics import TopicKind
from stockflow.domain.webhooks import matches
from stockflow.engine.db_link import DbLink
from stockflow.engine.dispatch import Directory, Dispatcher

__all__ = ["RELAYED", "Intake", "matched", "read_event", "run"]

log = logging.getLogger("stockflow.engine.relay")

# The output topics whose events can be sent to endpoints (the DLQ holds inputs, not outputs):
# the stock processor's, and the order coordinator's statuses (so a shop that only speaks
# HTTP learns of an order rejected as stock_lost).
RELAYED = (TopicKind.STOCK_CHANGED, TopicKind.LOW_STOCK, TopicKind.OVERSELL,
           TopicKind.RESERVATIONS, TopicKind.ORDER_STATUS)
BATCH = 500  # events per intake transaction at most
WAIT_MS = 500  # how long a read waits for the first event (the loop ticks between reads)


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


class Intake(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads the output topics and queues what endpoints want, until `stop` is set. One
    loop reads a batch, writes it, commits its offsets, and only then reads again.

    `consumer`: an aiokafka consumer, not started; the intake subscribes it to `topics`
    with itself as the rebalance listener."""

    def __init__(self, consumer: Any, topics: Sequence[str], *, db: DbLink,
                 directory: Directory, dispatcher: Dispatcher, metrics: RelayMetrics,
                 health: Health) -> None:
        self.consumer, self.topics, self.db = consumer, list(topics), db
        self.directory, self.dispatcher = directory, dispatcher
        self.metrics, self.health = metrics, health

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to hand over: a batch's offsets are committed before the next is read,
        and one in flight is read again by whoever gets its partitions."""

    async def on_partitions_assigned(self, assigned: Any) -> None:
        """Readiness follows the assignment; said once per rebalance."""
        self.health.assigned = bool(assigned)
        log.info("partitions assigned: %d", len(assigned))

    async def run(self, stop: asyncio.Event) -> None:
        """Read, queue and commit batches until `stop` is set."""
        self.consumer.subscribe(self.topics, listener=self)
        try:
            await self.directory.loaded.wait()
            while not stop.is_set():
                self.health.tick()
                records: Mapping[Any, list[Any]] = await self.consumer.getmany(
                    timeout_ms=WAIT_MS, max_records=BATCH)
                if records:
                    await self._take(records)
        finally:
            await self.db.close()

    async def _take(self, records: Mapping[Any, list[Any]]) -> None:
        batch = [m for messages in records.values() for m in messages]
        events = []
        for m in batch:
            got = read_event(m.value or b"")
            if got is None:
                log.warning("not an output event at %s[%d]@%d: skipped", m.topic,
                            m.partition, m.offset)
            else:
                events.append(got)
        keep, pairs = matched(self.directory.endpoints(), events)
        self.metrics.read.labels("unreadable").inc(len(batch) - len(events))
        self.metrics.read.labels("matched").inc(len(keep))
        self.metrics.read.labels("unmatched").inc(len(events) - len(keep))
        if keep:
            self.metrics.queued.inc(await self.db.call(partial(_enqueue, events=keep,
                                                               pairs=pairs)))
            self.dispatcher.poke()
        try:
            await self.consumer.commit({tp: messages[-1].offset + 1
                                        for tp, messages in records.items()})
        except KafkaError as exc:
            # the batch is queued; a rebalance or a broker outage kept its offsets from
            # being committed, so it is read again later and queues nothing twice
            log.info("offsets of a queued batch not committed (%s): read again later", exc)


async def run(new_consumer: Callable[[], Any], intake: Callable[[Any], Intake],
              dispatcher: Dispatcher, stop: asyncio.Event, retry_every: float = 1.0) -> None:
    """Run the intake and the delivery until `stop` is set. The consumer (`new_consumer()`)
    is started again, a new one each time, until a broker answers (an outage at start is
    waited out, as later ones are)."""
    delivery = asyncio.create_task(dispatcher.run(stop))
    consumer = None
    try:
        while consumer is None and not stop.is_set():
            candidate = new_consumer()
            try:
                await candidate.start()
                consumer = candidate
            except KafkaError as exc:
                log.debug("no broker answered at start: %s", exc)
                with contextlib.suppress(KafkaError):
                    await candidate.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_every)
        if consumer is not None:
            reading = asyncio.create_task(intake(consumer).run(stop))
            try:
                await asyncio.wait({reading, asyncio.create_task(stop.wait())},
                                   return_when=asyncio.FIRST_COMPLETED)
                if reading.done():
                    reading.result()  # the intake failed: raise it here
            finally:
                # a batch being written when stopped is read again by the next owner
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                await consumer.stop()
    finally:
        stop.set()
        await delivery


def _enqueue(conn: Conn, events: list[store.OutEvent], pairs: list[tuple[str, str]]) -> int:
    with conn.transaction():
        return store.enqueue(conn, events, pairs)
