"""The stock processor: consume batches from the four co-partitioned input topics and run
each through the checkpoint (see `checkpoint`), with positions owned by Postgres.

Two threads share the work: this one consumes, parses and decides batch N+1 while a
writer thread commits batch N and delivers its outputs; at most one batch is in flight.
On assignment, positions come from Postgres and the partition's undelivered outbox is
re-emitted before anything new is processed, so a crash or rebalance never applies an
event twice, skips one, or loses an output.

Nothing blocks a partition (see `failures`): an outage is waited out, after which the
member resumes from what Postgres holds; a batch that fails because of its data is
bisected until the offending messages are found, and those go to the DLQ as
`processing_error` while the rest is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from stockflow import StockflowError
from stockflow.adapters.db import queries, store
from stockflow.adapters.health import Health
from stockflow.adapters.kafka import (
    DeliveryFailures,
    age,
    headers_of,
    mirror_positions,
    produce_all,
    take_arrived,
)
from stockflow.adapters.observer import Observer
from stockflow.adapters.outbox import decode
from stockflow.contract.topics import TP, Topics
from stockflow.domain.inputs import Limits
from stockflow.domain.state import Policy
from stockflow.engine.cache import StateCache
from stockflow.engine.checkpoint import Checkpoint, Consumed, Offsets, Prepared, prepare
from stockflow.engine.failures import (
    Failure,
    GaveUpError,
    StoppedError,
    classify,
    describe,
    wait_out,
)
from stockflow.engine.isolation import MessageId, bisect
from stockflow.engine.sweeper import Sweeper

__all__ = ["Processor"]

log = logging.getLogger("stockflow.engine.processor")

T = TypeVar("T")


class Processor:
    """Consumes the input topics and applies each batch exactly once; `run` until stopped.
    `connect(autocommit)` opens a Postgres connection: the processor reconnects after an
    outage. `give_up` is how long an outage is waited out before `run` raises (0: never)."""

    def __init__(
        self, *, consumer: Consumer, producer: Producer, failures: DeliveryFailures,
        connect: Callable[[bool], store.Conn], topics: Topics, group: str, policy: Policy,
        limits: Limits, observer: Observer, health: Health, batch_max: int, idle_wait: float,
        sweep_interval: float, give_up: float, flush_timeout: float = 30.0,
        cache_entries: int,
    ) -> None:
        self.consumer, self.producer, self.failures = consumer, producer, failures
        self.connect = connect
        self.conn = connect(True)  # reads, autocommit
        self.writer_conn = connect(False)  # the batch transactions
        self.topics, self.group, self.policy, self.limits = topics, group, policy, limits
        self.observer, self.health = observer, health
        self.batch_max, self.idle_wait = batch_max, idle_wait
        self.sweep_interval, self.give_up = sweep_interval, give_up
        self.flush_timeout = flush_timeout
        self.cache = StateCache(policy, cache_entries)
        self.sweeper = Sweeper(topics)
        self.positions: dict[TP, int] = {}  # next offsets, as of the last batch
        self.unmirrored: dict[TP, int] = {}  # committed since the last mirror to Kafka
        self.assigned: set[TP] = set()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="stockflow-writer")
        self.in_flight: tuple[Future[Offsets], Prepared] | None = None
        self.next_sweep = 0.0
        self.rejoining = False  # the group session was lost: see `_nudge`
        self.next_nudge = 0.0
        self.processed = 0
        self.stop = threading.Event()
        # steps 2-4; touched by the writer thread, or by this one while the writer is idle
        self.checkpoint = Checkpoint(producer=producer, failures=failures, group=group,
                                     flush_timeout=flush_timeout, stop=self.stop)

    def close(self) -> None:
        self.conn.close()
        self.writer_conn.close()

    # --- the writer --------------------------------------------------------------------

    def _write(self, prepared: Prepared) -> Offsets:
        """Steps 2-4 of the checkpoint (on the writer thread, or inline while isolating a
        poison message); returns the batch's offsets."""
        prepared.report.stages["handoff"] = time.monotonic() - prepared.decided
        offsets = self.checkpoint.write(self.writer_conn, prepared)
        prepared.report.seconds = time.monotonic() - prepared.started
        self.observer.on_batch(prepared.report)
        return offsets

    def _finish_in_flight(self) -> bool:
        """Wait for the batch in flight. False if it failed: the failure was dealt with and
        the member re-positioned from Postgres, so anything decided since is void."""
        if self.in_flight is None:
            return True
        (future, prepared), self.in_flight = self.in_flight, None
        try:
            offsets = future.result()
        except Exception as exc:  # noqa: BLE001 - every failure is classified and handled
            self._handle(prepared.batch, {tp: a.to for tp, a in prepared.offsets.items()},
                         exc)
            return False
        self.health.trouble = None
        self._mirror(offsets)
        return True

    def _mirror(self, offsets: Offsets) -> None:
        self.unmirrored.update({tp: a.to for tp, a in offsets.items()})

    def _mirror_now(self) -> None:
        # Once per housekeeping, not per batch: each offset commit is a write to the broker's
        # __consumer_offsets log, and lag tools sample far less often than batches commit.
        if self.rejoining or not self.health.brokers.ok:
            # An offset commit from the member the group has lost, or one queued while the
            # broker was away, reaches the broker as one from a fenced static instance,
            # which librdkafka treats as fatal: after a broker restart the consumer stopped
            # for good (twice in a row in the suite's outage test). Never in a rebalance
            # either (see `_release`); Postgres holds the positions meanwhile.
            return
        mirror_positions(self.consumer, {tp: n for tp, n in self.unmirrored.items()
                                         if tp in self.assigned})
        self.unmirrored.clear()

    # --- failures ----------------------------------------------------------------------

    def _handle(self, batch: list[Consumed], ends: dict[TP, int], exc: BaseException) -> None:
        """Deal with a failed batch (see `failures`); afterwards the member continues from
        what Postgres holds. Raises only for fatal errors, a stop or the give-up time."""
        while True:
            kind = classify(exc)
            if kind is Failure.FATAL:
                raise exc
            self.observer.on_failure(kind.value)
            self.health.trouble = f"a batch failed: {describe(exc)}"
            try:
                if kind is Failure.OUTAGE:
                    self._retry(lambda: self._resync(reemit=True), exc)
                elif kind is Failure.FENCED:
                    log.warning("fenced, re-reading positions: %s", exc)
                    self.observer.on_fenced()
                    self._resync()
                else:
                    self._isolate(batch, ends, exc)
                    self._resync()
            except (StoppedError, GaveUpError):
                raise
            except Exception as again:  # noqa: BLE001 - e.g. an outage while isolating
                exc = again
                continue
            self.health.trouble = None
            return

    def _retry(self, attempt: Callable[[], T], first: BaseException) -> T:
        """Wait out an outage: reconnect and try `attempt` until it succeeds."""
        def reconnected() -> T:
            self._reconnect()
            return attempt()

        def waiting(exc: BaseException | None) -> None:
            self.health.tick()
            self.health.db_ok = not isinstance(exc, psycopg.Error)

        return wait_out(reconnected, first, stop=self.stop, give_up=self.give_up,
                        waiting=waiting)

    def _reconnect(self) -> None:
        if self.conn.closed or self.conn.broken:
            self.conn.close()
            self.conn = self.connect(True)
        if self.writer_conn.closed or self.writer_conn.broken:
            self.writer_conn.close()
            self.writer_conn = self.connect(False)
        else:
            self.writer_conn.rollback()

    def _isolate(self, batch: list[Consumed], ends: dict[TP, int], exc: BaseException) -> None:
        """Commit a batch that failed because of its data, dead-lettering what still fails
        on its own (see `isolation`)."""
        log.warning("a batch of %d failed, isolating the cause: %s", len(batch), describe(exc))
        last: dict[TP, int] = {}
        for m in batch:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)

        def attempt(part: list[Consumed], dead: Mapping[MessageId, str]) -> None:
            # a partition's end (past transaction markers) counts once its last message is in
            at_end = {tp: ends[tp] for m in part if (tp := (m.topic, m.partition)) in ends
                      and m.offset == last[tp]}
            prepared = self._prepare(part, at_end, dead)
            self._mirror(self._write(prepared))
            self.positions.update({tp: a.to for tp, a in prepared.offsets.items()})
            self.processed += len(part)

        def undo() -> None:
            self.writer_conn.rollback()
            self.cache.clear()  # it may hold the failed part's effects

        self.cache.clear()
        # the positions in memory may already count the failed batch: start from Postgres'
        self.positions = store.load_positions(self.conn, self.group, sorted(self.assigned))
        dead = bisect(batch, attempt, undo)
        log.warning("isolated %d message(s) of the batch to the DLQ", len(dead))

    # --- positions ---------------------------------------------------------------------

    def _resync(self, *, reemit: bool = False) -> None:
        """Forget what this member believed and continue from what Postgres holds: the
        consumer is re-assigned at the stored positions and, with `reemit`, the owned
        partitions' undelivered outbox is produced again (same ids) first."""
        self.cache.clear()
        owned = sorted(self.assigned)
        known = store.load_positions(self.conn, self.group, owned)
        if reemit:
            pending = store.pending_outbox(self.conn, self.group, sorted({p for _, p in owned}))
            if pending:
                log.info("re-emitting %d undelivered outbox batches", len(pending))
                self.checkpoint.emit(m for _, blob in pending for m in decode(blob))
            self.checkpoint.emitted = [i for i, _ in pending]
        self.positions = dict(known)
        self.consumer.assign([TopicPartition(t, p, known.get((t, p), OFFSET_BEGINNING))
                              for t, p in owned])

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._finish_in_flight()
        self.rejoining = False
        self.assigned = {(tp.topic, tp.partition) for tp in partitions}
        self._wait_out(lambda: self._resync(reemit=True))
        self.health.assigned = bool(partitions)
        self.observer.on_rebalance("assign", len(partitions))
        log.info("assigned partitions %s of %d topics", _numbers(self.assigned),
                 len({t for t, _ in self.assigned}))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rejoining = True  # set first: nothing is mirrored from the lost member
        self._release(partitions, "lost partitions %s (the group session expired): rejoining")

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, "revoked partitions %s")

    def _release(self, partitions: list[TopicPartition], said: str) -> None:
        self._finish_in_flight()
        self.cache.clear()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned -= gone
        for tp in gone:
            self.positions.pop(tp, None)
            self.unmirrored.pop(tp, None)
        self.consumer.unassign()
        self.health.assigned = bool(self.assigned)
        self.observer.on_rebalance("revoke", len(self.assigned))
        log.info(said, _numbers(gone))

    def _wait_out(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, waiting out an outage it runs into."""
        try:
            return attempt()
        except Exception as exc:
            if classify(exc) is not Failure.OUTAGE:
                raise
            self.observer.on_failure(Failure.OUTAGE.value)
            return self._retry(attempt, exc)

    # --- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event, progress: Callable[[int], None] | None = None) -> None:
        """Process until `stop` is set; the batch in hand is finished first."""
        self.stop = stop
        self.consumer.subscribe(self.topics.inputs, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        self.health.db_ok = True
        try:
            while not stop.is_set():
                self._step()
                if progress is not None:
                    progress(self.processed)
            self._finish_in_flight()
            self._wait_out(lambda: self.checkpoint.mark_emitted(self.writer_conn))
            self._mirror_now()
        except StoppedError:
            log.info("stopped during an outage: whatever was not committed is read again "
                     "by the next owner")
        finally:
            self.writer.shutdown(wait=True)
            self.consumer.close()
            self.producer.flush(5)

    def _step(self) -> None:
        # A batch is whatever has arrived: small under a light load, growing with a backlog
        # (messages gather while the writer commits the batch before), with no wait to tune.
        msgs = take_arrived(self.consumer, self.batch_max, self.idle_wait)
        self.health.tick()
        if self.health.brokers.fatal is not None:  # the client is unusable: stop, loudly
            raise StockflowError(f"fatal Kafka client error: {self.health.brokers.fatal}")
        if self.rejoining:
            self._nudge()
        queued = age(msgs[0]) if msgs else 0.0
        batch: list[Consumed] = []
        assigned = self.assigned
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal() or err.code() == KafkaError._FATAL:  # noqa: SLF001
                    raise StockflowError(f"fatal consumer error: {err}")
                self.health.brokers.error(err)  # counted, and said once per outage
                continue
            topic, part, offset = m.topic(), m.partition(), m.offset()
            # A message of a partition revoked since it was fetched is not ours to apply.
            if (topic, part) in assigned and topic and part is not None and offset is not None:
                raw = m.headers()
                batch.append(Consumed(topic, part, offset, m.key(), m.value(),
                                      headers_of(raw) if raw else None))
        if batch:
            self.health.brokers.up()
            self._process(batch, queued)
        elif self.in_flight is None or self.in_flight[0].done():
            if not self._finish_in_flight():
                return
            self._wait_out(lambda: self.checkpoint.mark_emitted(self.writer_conn))
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + self.sweep_interval
            self._housekeeping()

    def _prepare(self, batch: list[Consumed], ends: dict[TP, int],
                 dead: Mapping[MessageId, str] | None = None) -> Prepared:
        return prepare(self.conn, self.cache, batch, topics=self.topics, policy=self.policy,
                       limits=self.limits, positions=self.positions, ends=ends, dead=dead)

    def _process(self, batch: list[Consumed], queued: float = 0.0) -> None:
        if self.cache.full() and self._finish_in_flight():
            self.cache.clear()
        # The consumer's position has stepped over transaction markers too, so a partition
        # whose last record is a commit marker still reads as fully consumed.
        tps = {(m.topic, m.partition) for m in batch}
        ends = {(tp.topic, tp.partition): tp.offset for tp in
                self.consumer.position([TopicPartition(t, p) for t, p in tps])}
        try:
            prepared = self._prepare(batch, ends)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and handled
            if self._finish_in_flight():  # else this batch is void anyway: it is read again
                self._handle(batch, ends, exc)
            return
        prepared.decided = time.monotonic()
        prepared.report.stages.update(queue=queued, decide=prepared.decided - prepared.started)
        if not self._finish_in_flight():
            return  # this batch was decided on state that is now void
        self.positions.update({tp: a.to for tp, a in prepared.offsets.items()})
        self.in_flight = (self.writer.submit(self._write, prepared), prepared)
        self.processed += len(batch)

    # --- periodic work -----------------------------------------------------------------

    def _nudge(self) -> None:
        """Ask for metadata while rejoining after a lost session. A restarted broker
        refuses JoinGroup until its group coordinator has loaded (NOT_COORDINATOR, then
        COORDINATOR_LOAD_IN_PROGRESS); librdkafka retries only a second or two later,
        unless a metadata response comes, which lets it retry at once. Measured from the
        broker's return to the member's assignment: 2.2-2.9 s without, 1.5-2.3 s with."""
        now = time.monotonic()
        if now < self.next_nudge:
            return
        self.next_nudge = now + _NUDGE_EVERY
        try:
            self.consumer.list_topics(self.topics.inputs[0], timeout=_NUDGE_EVERY)
        except KafkaException:
            return  # still away: its clients' errors tell the watch
        self.health.brokers.up()

    def _housekeeping(self) -> None:
        try:
            if self.health.brokers.ok:  # else the sweeper's outputs would wait for them
                self._sweep()
            self._report()
            self._mirror_now()
        except Exception as exc:
            if classify(exc) is Failure.OUTAGE:
                if self._finish_in_flight():
                    self._handle([], {}, exc)
            else:
                log.exception("housekeeping failed")
        self.observer.on_health(self.health.ready())

    def _report(self) -> None:
        lags: dict[TP, int] = {}
        for topic, part in self.assigned:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, part),
                                                          cached=True)
            pos = self.positions.get((topic, part), 0)
            if high >= 0:
                lags[(topic, part)] = max(0, high - pos)
        self.observer.on_lag(lags)
        self.observer.on_cache(self.cache.size())
        self.observer.on_alerts(queries.open_alerts(self.conn))
        self.observer.on_backlog(*queries.outbox_backlog(self.conn, self.group))

    def _sweep(self) -> None:
        """Write reservation.expired for pending reservations past their expiry."""
        parts = sorted({p for _, p in self.assigned})
        if not parts:
            return
        fresh = self.sweeper.due(self.conn, parts, datetime.now(UTC))
        if fresh:
            produce_all(self.producer, fresh)
            self.producer.flush(10)
            self.observer.on_swept(len(fresh))


_NUDGE_EVERY = 0.2  # seconds between two metadata requests while rejoining


def _numbers(tps: Iterable[TP]) -> list[int]:
    return sorted({p for _, p in tps})
