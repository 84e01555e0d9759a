"""The engine's loop: consume batches from a decider's co-partitioned topics and run each
through the checkpoint (see `checkpoint`), with positions owned by Postgres. The stock
processor is one decider it hosts (`stock.StockDecider`), the order coordinator another.

Two threads share the work: this one consumes and decides batch N+1 while the writer
(`writer`) commits batch N and delivers its outputs; at most one batch is in flight. On
assignment, positions come from Postgres and the partition's undelivered outbox is
re-emitted before anything new is decided, so a crash or rebalance never applies an event
twice, skips one, or loses an output.

Nothing blocks a partition (see `failures`, `recovery`): an outage is waited out, after
which the member resumes from what Postgres holds; a batch that fails because of its data
is bisected until the offending messages are found, and those go to the DLQ as
`processing_error` while the rest is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from stockflow import StockflowError
from stockflow.adapters.health import Health
from stockflow.adapters.kafka import age, headers_of, mirror_positions, produce_all, take_arrived
from stockflow.adapters.observer import Observer
from stockflow.contract.topics import TP
from stockflow.engine.batch import Consumed
from stockflow.engine.failures import Failure, StoppedError, classify
from stockflow.engine.member import Member
from stockflow.engine.ports import BatchStore, Decider
from stockflow.engine.recovery import Recovery
from stockflow.engine.writer import Writer

__all__ = ["Host"]

log = logging.getLogger("stockflow.engine.host")

_FATAL = KafkaError._FATAL  # noqa: SLF001 - librdkafka's local codes carry an underscore


class Host:
    """Hosts `decider`, exactly once; `run` until stopped. `give_up` is how long an outage
    is waited out before `run` raises (0: never)."""

    def __init__(
        self, *, consumer: Consumer, producer: Producer, store: BatchStore, decider: Decider,
        writer: Writer, group: str, observer: Observer, health: Health, batch_max: int,
        idle_wait: float, sweep_interval: float, give_up: float,
    ) -> None:
        self.consumer, self.producer, self.store = consumer, producer, store
        self.decider, self.writer, self.group = decider, writer, group
        self.observer, self.health = observer, health
        self.batch_max, self.idle_wait, self.sweep_interval = batch_max, idle_wait, sweep_interval
        self.member = Member()
        self.recovery = Recovery(consumer=consumer, store=store, decider=decider, writer=writer,
                                 member=self.member, observer=observer, health=health,
                                 give_up=give_up)
        self.next_sweep = 0.0
        self.rejoining = False  # the group session was lost: see `_nudge`
        self.next_nudge = 0.0

    @property
    def processed(self) -> int:
        """Messages this member has decided so far."""
        return self.member.processed

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    # --- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event, progress: Callable[[int], None] | None = None) -> None:
        """Process until `stop` is set; the batch in hand is finished first."""
        self.writer.checkpoint.stop = self.recovery.stop = stop
        self.consumer.subscribe(self.decider.inputs, on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        self.health.db_ok = True
        try:
            while not stop.is_set():
                self._step()
                if progress is not None:
                    progress(self.member.processed)
            self._finish_in_flight()
            self.recovery.wait_out(self.writer.checkpoint.mark_emitted)
            self._mirror_now()
        except StoppedError:
            log.info("stopped during an outage: whatever was not committed is read again "
                     "by the next owner")
        finally:
            self.writer.shutdown()
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
        assigned = self.member.assigned
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal() or err.code() == _FATAL:
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
        elif self.writer.idle:
            if not self._finish_in_flight():
                return
            self.recovery.wait_out(self.writer.checkpoint.mark_emitted)
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + self.sweep_interval
            self._housekeeping()

    def _process(self, batch: list[Consumed], queued: float = 0.0) -> None:
        if self.decider.full() and self._finish_in_flight():
            self.decider.forget()
        # The consumer's position has stepped over transaction markers too, so a partition
        # whose last record is a commit marker still reads as fully consumed.
        tps = {(m.topic, m.partition) for m in batch}
        ends = {(tp.topic, tp.partition): tp.offset for tp in
                self.consumer.position([TopicPartition(t, p) for t, p in tps])}
        try:
            prepared = self.decider.decide(self.store.reads, batch,
                                           positions=self.member.positions, ends=ends)
        except Exception as exc:  # noqa: BLE001 - every failure is classified and handled
            if self._finish_in_flight():  # else this batch is void anyway: it is read again
                self.recovery.handle(batch, ends, exc)
            return
        prepared.decided = time.monotonic()
        prepared.report.stages.update(queue=queued, decide=prepared.decided - prepared.started)
        if not self._finish_in_flight():
            return  # this batch was decided on state that is now void
        self.member.decided(prepared.offsets, len(batch))
        self.writer.submit(prepared)

    def _finish_in_flight(self) -> bool:
        """Wait for the batch in flight. False if it failed: the failure was dealt with and
        the member re-positioned from Postgres, so anything decided since is void."""
        taken = self.writer.take()
        if taken is None:
            return True
        future, prepared = taken
        try:
            offsets = future.result()
        except Exception as exc:  # noqa: BLE001 - every failure is classified and handled
            self.recovery.handle(prepared.batch,
                                 {tp: a.to for tp, a in prepared.offsets.items()}, exc)
            return False
        self.health.trouble = None
        self.member.committed(offsets)
        return True

    # --- the group -----------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._finish_in_flight()
        self.rejoining = False
        self.member.assigned = {(tp.topic, tp.partition) for tp in partitions}
        self.recovery.wait_out(lambda: self.recovery.resync(reemit=True))
        self.health.assigned = bool(partitions)
        self.observer.on_rebalance("assign", len(partitions))
        log.info("assigned partitions %s of %d topics", _numbers(self.member.assigned),
                 len({t for t, _ in self.member.assigned}))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rejoining = True  # set first: nothing is mirrored from the lost member
        self._release(partitions, "lost partitions %s (the group session expired): rejoining")

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, "revoked partitions %s")

    def _release(self, partitions: list[TopicPartition], said: str) -> None:
        self._finish_in_flight()
        self.decider.forget()
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.member.release(gone)
        self.consumer.unassign()
        self.health.assigned = bool(self.member.assigned)
        self.observer.on_rebalance("revoke", len(self.member.assigned))
        log.info(said, _numbers(gone))

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
            self.consumer.list_topics(self.decider.inputs[0], timeout=_NUDGE_EVERY)
        except KafkaException:
            return  # still away: its clients' errors tell the watch
        self.health.brokers.up()

    def _mirror_now(self) -> None:
        # Once per housekeeping, not per batch: each offset commit is a write to the broker's
        # __consumer_offsets log, and lag tools sample far less often than batches commit.
        if self.rejoining or not self.health.brokers.ok:
            # An offset commit from the member the group has lost, or one queued while the
            # broker was away, can reach the broker as one from a fenced member, which
            # librdkafka treats as fatal. Never in a rebalance either (see `_release`);
            # Postgres holds the positions meanwhile.
            return
        member = self.member
        mirror_positions(self.consumer, {tp: n for tp, n in member.unmirrored.items()
                                         if tp in member.assigned})
        member.unmirrored.clear()

    # --- periodic work -----------------------------------------------------------------

    def _housekeeping(self) -> None:
        try:
            if self.health.brokers.ok:  # else the sweep's outputs would wait for them
                self._sweep()
            self._report()
            self._mirror_now()
        except Exception as exc:
            if classify(exc) is Failure.OUTAGE:
                if self._finish_in_flight():
                    self.recovery.handle([], {}, exc)
            else:
                log.exception("housekeeping failed")
        self.observer.on_health(self.health.ready())

    def _report(self) -> None:
        lags: dict[TP, int] = {}
        for topic, part in self.member.assigned:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, part),
                                                          cached=True)
            pos = self.member.positions.get((topic, part), 0)
            if high >= 0:
                lags[(topic, part)] = max(0, high - pos)
        self.observer.on_lag(lags)
        self.decider.report(self.store.reads, self.observer)
        self.observer.on_backlog(*self.store.backlog())

    def _sweep(self) -> None:
        """Produce what the decider's clock made due (the stock rules' expiries)."""
        parts = sorted({p for _, p in self.member.assigned})
        if not parts:
            return
        fresh = self.decider.due(self.store.reads, parts)
        if fresh:
            produce_all(self.producer, fresh)
            self.producer.flush(10)
            self.observer.on_swept(len(fresh))


_NUDGE_EVERY = 0.2  # seconds between two metadata requests while rejoining


def _numbers(tps: Iterable[TP]) -> list[int]:
    return sorted({p for _, p in tps})
