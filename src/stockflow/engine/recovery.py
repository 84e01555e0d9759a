"""What the host does when a batch fails (see `failures`): an outage is waited out and the
member re-positioned from what Postgres holds, re-emitting its undelivered outbox; a fenced
member re-reads its positions; a batch that failed because of its data is committed part
by part, its poison messages dead-lettered (`isolation`). Afterwards the member continues
from what Postgres holds, so nothing decided on void beliefs is ever committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stockflow.adapters.health import Health
from stockflow.adapters.observer import Observer
from stockflow.adapters.outbox import decode
from stockflow.contract.topics import TP
from stockflow.engine.batch import Consumed
from stockflow.engine.failures import (
    Failure,
    GaveUpError,
    StoppedError,
    classify,
    describe,
    wait_out,
)
from stockflow.engine.isolation import MessageId, bisect
from stockflow.engine.member import Member
from stockflow.engine.ports import BatchStore, Decider
from stockflow.engine.writer import Writer

__all__ = ["Recovery"]

log = logging.getLogger("stockflow.engine.recovery")

T = TypeVar("T")


class Recovery:
    """`give_up`: how long an outage is waited out before the host gives up (0: never);
    `stop` cuts a wait short (set by the host when it runs)."""

    def __init__(self, *, consumer: Consumer, store: BatchStore, decider: Decider,
                 writer: Writer, member: Member, observer: Observer, health: Health,
                 give_up: float) -> None:
        self.consumer, self.store, self.decider, self.writer = consumer, store, decider, writer
        self.member, self.observer, self.health = member, observer, health
        self.give_up = give_up
        self.stop = writer.checkpoint.stop

    def handle(self, batch: list[Consumed], ends: dict[TP, int], exc: BaseException) -> None:
        """Deal with a failed batch; afterwards the member continues from what Postgres
        holds. Raises only for fatal errors, a stop or the give-up time."""
        while True:
            kind = classify(exc)
            if kind is Failure.FATAL:
                raise exc
            self.observer.on_failure(kind.value)
            self.health.trouble = f"a batch failed: {describe(exc)}"
            try:
                if kind is Failure.OUTAGE:
                    self.retry(lambda: self.resync(reemit=True), exc)
                elif kind is Failure.FENCED:
                    log.warning("fenced, re-reading positions: %s", exc)
                    self.observer.on_fenced()
                    self.resync()
                else:
                    self._isolate(batch, ends, exc)
                    self.resync()
            except (StoppedError, GaveUpError):
                raise
            except Exception as again:  # noqa: BLE001 - e.g. an outage while isolating
                exc = again
                continue
            self.health.trouble = None
            return

    def wait_out(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, waiting out an outage it runs into."""
        try:
            return attempt()
        except Exception as exc:
            if classify(exc) is not Failure.OUTAGE:
                raise
            self.observer.on_failure(Failure.OUTAGE.value)
            return self.retry(attempt, exc)

    def retry(self, attempt: Callable[[], T], first: BaseException) -> T:
        """Wait out an outage: reconnect and try `attempt` until it succeeds."""
        def reconnected() -> T:
            self.store.reconnect()
            return attempt()

        def waiting(exc: BaseException | None) -> None:
            self.health.tick()
            self.health.db_ok = not isinstance(exc, psycopg.Error)

        return wait_out(reconnected, first, stop=self.stop, give_up=self.give_up,
                        waiting=waiting)

    def resync(self, *, reemit: bool = False) -> None:
        """Forget what this member believed and continue from what Postgres holds: the
        consumer is re-assigned at the stored positions and, with `reemit`, the owned
        partitions' undelivered outbox is produced again (same ids) first."""
        self.decider.forget()
        owned = sorted(self.member.assigned)
        known = self.store.positions(owned)
        checkpoint = self.writer.checkpoint
        if reemit:
            pending = self.store.pending_outbox(sorted({p for _, p in owned}))
            if pending:
                log.info("re-emitting %d undelivered outbox batches", len(pending))
                checkpoint.emit(m for _, blob in pending for m in decode(blob))
            checkpoint.emitted = [i for i, _ in pending]
        self.member.positions = dict(known)
        self.consumer.assign([TopicPartition(t, p, known.get((t, p), OFFSET_BEGINNING))
                              for t, p in owned])

    def _isolate(self, batch: list[Consumed], ends: dict[TP, int], exc: BaseException) -> None:
        """Commit a batch that failed because of its data, dead-lettering what still fails
        on its own (see `isolation`)."""
        log.warning("a batch of %d failed, isolating the cause: %s", len(batch), describe(exc))
        last: dict[TP, int] = {}
        for m in batch:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
        member = self.member

        def attempt(part: list[Consumed], dead: Mapping[MessageId, str]) -> None:
            # a partition's end (past transaction markers) counts once its last message is in
            at_end = {tp: ends[tp] for m in part if (tp := (m.topic, m.partition)) in ends
                      and m.offset == last[tp]}
            prepared = self.decider.decide(self.store.reads, part, positions=member.positions,
                                           ends=at_end, dead=dead)
            member.committed(self.writer.write(prepared))
            member.decided(prepared.offsets, len(part))

        def undo() -> None:
            self.store.rollback()
            self.decider.forget()  # it may hold the failed part's effects

        self.decider.forget()
        # the positions in memory may already count the failed batch: start from Postgres'
        member.positions = self.store.positions(sorted(member.assigned))
        dead = bisect(batch, attempt, undo)
        log.warning("isolated %d message(s) of the batch to the DLQ", len(dead))
