"""The stock processor: consume batches from the four co-partitioned input topics and run
each through the checkpoint (see `checkpoint`), with positions owned by Postgres.

Two threads share the work: this one consumes, parses and decides batch N+1 while a
writer thread commits batch N and delivers its outputs; at most one batch is in flight.
On assignment, positions come from Postgres and the partition's undelivered outbox is
re-emitted before anything new is processed, so a crash or rebalance never applies an
event twice, skips one, or loses an output.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)

from stockflow import StockflowError
from stockflow.cache import StateCache
from stockflow.checkpoint import Consumed, Limits, Prepared, commit, prepare
from stockflow.db import store
from stockflow.domain.state import Policy
from stockflow.health import Health
from stockflow.kafka import DeliveryFailures
from stockflow.metrics import Observer
from stockflow.outbox import Message, decode
from stockflow.sweeper import due_expiries
from stockflow.topics import Topics

__all__ = ["DeliveryError", "Processor"]

log = logging.getLogger("stockflow.processor")


class DeliveryError(StockflowError):
    """Outputs could not be delivered; the outbox keeps them for the next owner."""


class Processor:
    def __init__(
        self, *, consumer: Consumer, producer: Producer, failures: DeliveryFailures,
        conn: store.Conn, writer_conn: store.Conn, topics: Topics, group: str, policy: Policy,
        limits: Limits, observer: Observer, health: Health, batch_max: int = 5000,
        batch_wait: float = 0.1, sweep_interval: float = 5.0, cache_entries: int = 1_000_000,
    ) -> None:
        self.consumer, self.producer, self.failures = consumer, producer, failures
        self.conn, self.writer_conn = conn, writer_conn  # reads (autocommit), writes
        self.topics, self.group, self.policy, self.limits = topics, group, policy, limits
        self.observer, self.health = observer, health
        self.batch_max, self.batch_wait, self.sweep_interval = batch_max, batch_wait, sweep_interval
        self.cache = StateCache(policy, cache_entries)
        self.positions: dict[tuple[str, int], int] = {}  # next offsets, as of the last batch
        self.assigned: set[tuple[str, int]] = set()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="stockflow-writer")
        self.in_flight: Future[dict[tuple[str, int], tuple[int, int]]] | None = None
        self.flushed_outbox: list[int] = []  # touched by the writer, or while it is idle
        self.swept: dict[str, float] = {}
        self.next_sweep = 0.0
        self.processed = 0

    # --- the writer --------------------------------------------------------------------

    def _write(self, prepared: Prepared) -> dict[tuple[str, int], tuple[int, int]]:
        """Steps 2-4 of the checkpoint, on the writer thread; returns its offsets."""
        ids = commit(self.writer_conn, prepared, group=self.group,
                     delete_outbox=self.flushed_outbox)
        self.flushed_outbox = []
        self._produce(prepared.messages)
        self._flush()
        self.flushed_outbox = ids
        prepared.report.seconds = time.monotonic() - prepared.started
        self.observer.on_batch(prepared.report)
        return prepared.offsets

    def _settle(self) -> bool:
        """Wait for the batch in flight. False if this member was fenced: the cache and
        positions were rebuilt from Postgres and the consumer re-positioned."""
        if self.in_flight is None:
            return True
        future, self.in_flight = self.in_flight, None
        try:
            offsets = future.result()
        except store.FencedError as exc:
            log.warning("fenced, re-reading positions: %s", exc)
            self.observer.on_fenced()
            self._resync()
            return False
        self._mirror(offsets)
        return True

    def _mirror(self, offsets: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Copy committed positions to Kafka, asynchronously, for lag tools and autoscalers
        (KEDA, kafka-consumer-groups). Postgres stays the only source of positions."""
        owned = [TopicPartition(t, p, nxt) for (t, p), (_, nxt) in offsets.items()
                 if (t, p) in self.assigned]
        if owned:
            try:
                self.consumer.commit(offsets=owned, asynchronous=True)
            except KafkaException as exc:  # visibility only: never stop processing for it
                log.warning("could not mirror offsets to Kafka: %s", exc)

    # --- rebalance ---------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()
        self.cache.clear()
        tps = [(tp.topic, tp.partition) for tp in partitions]
        known = store.load_positions(self.conn, self.group, tps)
        pending = store.pending_outbox(self.conn, self.group, sorted({p for _, p in tps}))
        for tp in partitions:
            tp.offset = known.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        self.positions = dict(known)
        self.assigned = set(tps)
        consumer.assign(partitions)
        if pending:
            log.info("re-emitting %d undelivered outbox batches", len(pending))
            for _, blob in pending:
                self._produce(decode(blob))
            self._flush()
            self.flushed_outbox.extend(i for i, _ in pending)
        self.health.assigned = bool(partitions)
        self.observer.on_rebalance("assign", len(partitions))
        log.info("assigned partitions %s of %d topics", _numbers(tps), len({t for t, _ in tps}))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()
        self.cache.clear()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= gone
        for tp in gone:
            self.positions.pop(tp, None)
        consumer.unassign()
        self.health.assigned = bool(self.assigned)
        self.observer.on_rebalance("revoke", len(self.assigned))
        log.info("revoked partitions %s", _numbers(gone))

    def _resync(self) -> None:
        """After being fenced: forget what we believed and seek to what Postgres holds."""
        self.cache.clear()
        self.writer_conn.rollback()
        known = store.load_positions(self.conn, self.group, sorted(self.assigned))
        self.positions = dict(known)
        for topic, part in sorted(self.assigned):
            offset = known.get((topic, part), OFFSET_BEGINNING)
            self.consumer.seek(TopicPartition(topic, part, offset))

    # --- producing ---------------------------------------------------------------------

    def _produce(self, messages: list[Message]) -> None:
        produce = self.producer.produce
        for topic, key, value, headers in messages:
            while True:
                try:
                    if headers:
                        produce(topic, value, key, headers=list(headers))
                    else:
                        produce(topic, value, key)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self.producer.poll(0)

    def _flush(self) -> None:
        left = self.producer.flush(60)
        failed = self.failures.messages
        if left or failed:
            raise DeliveryError(f"{left} outputs undelivered, failures: {failed[:3]}")

    # --- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event, progress: Callable[[int], None] | None = None) -> None:
        """Process until `stop` is set; the batch in hand is finished first."""
        self.consumer.subscribe(self.topics.inputs, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)
        self.health.db_ok = True
        try:
            while not stop.is_set():
                self._step()
                if progress is not None:
                    progress(self.processed)
            self._settle()
            self._drain_outbox_deletes()
        finally:
            self.writer.shutdown(wait=True)
            self.consumer.close()
            self.producer.flush(30)

    def _step(self) -> None:
        msgs = self.consumer.consume(num_messages=self.batch_max, timeout=self.batch_wait)
        self.health.tick()
        batch: list[Consumed] = []
        assigned = self.assigned
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise StockflowError(f"fatal consumer error: {err}")
                log.warning("consumer error: %s", err)
                continue
            topic, part, offset = m.topic(), m.partition(), m.offset()
            # A message of a partition revoked since it was fetched is not ours to apply.
            if (topic, part) in assigned and topic and part is not None and offset is not None:
                raw = m.headers()
                batch.append(Consumed(topic, part, offset, m.key(), m.value(),
                                      _headers(raw) if raw else None))
        if batch:
            self._process(batch)
        elif self.in_flight is None or self.in_flight.done():
            if not self._settle():
                return
            self._drain_outbox_deletes()
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + self.sweep_interval
            self._housekeeping()

    def _process(self, batch: list[Consumed]) -> None:
        if self.cache.full() and self._settle():
            self.cache.clear()
        # The consumer's position has stepped over transaction markers too, so a partition
        # whose last record is a commit marker still reads as fully consumed.
        tps = {(m.topic, m.partition) for m in batch}
        ends = {(tp.topic, tp.partition): tp.offset for tp in
                self.consumer.position([TopicPartition(t, p) for t, p in tps])}
        prepared = prepare(self.conn, self.cache, batch, topics=self.topics,
                           policy=self.policy, limits=self.limits, positions=self.positions,
                           ends=ends)
        if not self._settle():
            return  # this batch was decided on state that is now void
        self.positions.update({tp: nxt for tp, (_, nxt) in prepared.offsets.items()})
        self.in_flight = self.writer.submit(self._write, prepared)
        self.processed += len(batch)

    def _drain_outbox_deletes(self) -> None:
        if not self.flushed_outbox:
            return
        with self.writer_conn.transaction():
            self.writer_conn.execute("DELETE FROM outbox WHERE id = ANY(%b)",
                                     (self.flushed_outbox,))
        self.flushed_outbox = []

    # --- periodic work -----------------------------------------------------------------

    def _housekeeping(self) -> None:
        self._sweep()
        lags: dict[tuple[str, int], int] = {}
        for topic, part in self.assigned:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, part),
                                                          cached=True)
            pos = self.positions.get((topic, part), 0)
            if high >= 0:
                lags[(topic, part)] = max(0, high - pos)
        self.observer.on_lag(lags)
        rows = self.conn.execute(
            "SELECT severity, count(*) FROM low_stock_alerts GROUP BY severity").fetchall()
        self.observer.on_alerts({str(s): int(n) for s, n in rows})
        backlog = self.conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
            " FROM outbox WHERE group_id = %s", (self.group,)).fetchone()
        if backlog is not None:
            self.observer.on_backlog(int(backlog[0]), float(backlog[1]))
        self.observer.on_health(self.health.ready())

    def _sweep(self) -> None:
        """Write reservation.expired for pending reservations past their expiry."""
        parts = sorted({p for _, p in self.assigned})
        if not parts:
            return
        due = due_expiries(self.conn, parts, datetime.now(UTC), self.topics, limit=5000)
        wall = time.monotonic()
        self.swept = {k: t for k, t in self.swept.items() if wall - t < 60}
        fresh = [m for ident, m in due if ident not in self.swept]
        if not fresh:
            return
        self._produce(fresh)
        self.producer.flush(30)
        for ident, _ in due:
            self.swept.setdefault(ident, wall)
        self.observer.on_swept(len(fresh))


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    return [(k, v if isinstance(v, bytes) else str(v or "").encode()) for k, v in raw]


def _numbers(tps: Iterable[tuple[str, int]]) -> list[int]:
    return sorted({p for _, p in tps})
