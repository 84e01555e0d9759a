"""The engine's loop, driven with a fake consumer, producer and store (the Postgres side's
compare-and-set and one transaction per batch, kept in memory) and a trivial decider: every
message is committed exactly once, applied or dead-lettered, through a rebalance while a
batch is in flight, a commit fenced by another member, and an outage in the middle of
isolating a poison message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import pytest

from stockflow.adapters.db.batches import FencedError, Offsets, OutboxRow
from stockflow.adapters.health import Health
from stockflow.adapters.kafka import DeliveryFailures
from stockflow.adapters.observer import BatchReport, NullObserver
from stockflow.contract.emit import Message
from stockflow.contract.topics import TP
from stockflow.engine.batch import Consumed, Prepared, framed, offsets_of
from stockflow.engine.checkpoint import Checkpoint
from stockflow.engine.failures import DecideError
from stockflow.engine.host import Host
from stockflow.engine.writer import Writer
from tests.fake_kafka import Broker, FakeConsumer, FakeProducer, Record

TOPICS = ["in.a", "in.b"]
PARTITIONS = 2
POISON = b"poison"


def _outage() -> psycopg.OperationalError:
    return psycopg.OperationalError("server closed the connection unexpectedly")


class FakeStore:
    """Postgres as the engine sees it: positions advanced by compare-and-set, the outbox,
    and the decider's rows, all or nothing per commit. `applied` counts every committed
    row by who committed it."""

    reads: Any = None

    def __init__(self) -> None:
        self.committed: dict[TP, int] = {}
        self.outbox: dict[int, tuple[int, bytes]] = {}
        self.next_id = 1
        self.applied: list[tuple[str, bytes]] = []  # (who, value)
        self.fail_next: list[BaseException] = []  # raised by the next commits, in turn
        # raised by the next commits made inline, not by the writer thread: isolation's
        self.fail_inline: list[BaseException] = []
        self.gate: threading.Event | None = None  # while set up, commits wait for it
        self.waiting = threading.Event()  # a commit is waiting at the gate
        self.broken = False  # an outage: everything fails until a reconnect mends it

    def _check(self) -> None:
        if self.broken:
            raise _outage()

    def positions(self, partitions: list[TP]) -> dict[TP, int]:
        self._check()
        return {tp: self.committed[tp] for tp in partitions if tp in self.committed}

    def pending_outbox(self, partitions: list[int]) -> list[tuple[int, bytes]]:
        self._check()
        return [(i, blob) for i, (p, blob) in sorted(self.outbox.items()) if p in partitions]

    def commit(self, rows: Any, *, outbox: list[OutboxRow], offsets: Offsets,
               delete_outbox: list[int]) -> list[int]:
        if self.gate is not None:
            self.waiting.set()
            self.gate.wait()
        self._check()
        inline = not threading.current_thread().name.startswith("stockflow-writer")
        failing = self.fail_inline if inline else self.fail_next
        if failing or self.fail_next:
            exc = (failing or self.fail_next).pop(0)
            if isinstance(exc, psycopg.OperationalError):
                self.broken = True
            raise exc
        if any(self.committed.get(tp, a.expected) != a.expected for tp, a in offsets.items()):
            raise FencedError("consumer positions moved under this member")
        for tp, a in offsets.items():
            self.committed[tp] = a.to
        self.applied.extend(("host", v) for v in rows)
        for i in delete_outbox:
            self.outbox.pop(i, None)
        ids = []
        for row in outbox:
            self.outbox[self.next_id] = (row.partition, row.payload)
            ids.append(self.next_id)
            self.next_id += 1
        return ids

    def steal(self, tp: TP, log: list[bytes], upto: int) -> None:
        """Another member applies `tp` up to `upto` and commits it."""
        start = self.committed.get(tp, 0)
        self.applied.extend(("other", v) for v in log[start:upto])
        self.committed[tp] = upto

    def delete_outbox(self, ids: list[int]) -> None:
        self._check()
        for i in ids:
            self.outbox.pop(i, None)

    def backlog(self) -> tuple[int, float]:
        self._check()
        return len(self.outbox), 0.0

    def rollback(self) -> None:
        return None

    def reconnect(self) -> None:
        self.broken = False

    def close(self) -> None:
        return None


class FakeDecider:
    """Applies every message as it is; a poison message fails the whole batch it is in,
    unless it is named dead, when it goes to the DLQ."""

    inputs = TOPICS

    def __init__(self) -> None:
        self.forgotten = 0

    def decide(self, _reads: Any, batch: list[Consumed], *, positions: Mapping[TP, int],
               ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str] | None = None,
               ) -> Prepared:
        rows: list[bytes] = []
        out: dict[int, list[Message]] = {}
        for m in batch:
            assert m.value is not None
            if dead and (m.topic, m.partition, m.offset) in dead:
                rows.append(b"dlq:" + m.value)
                out.setdefault(m.partition, []).append(Message("dlq", m.key, m.value))
                continue
            if m.value == POISON:
                raise DecideError(f"deciding a batch of {len(batch)} failed") from ValueError(
                    "a bug met by this message")
            rows.append(m.value)
            out.setdefault(m.partition, []).append(Message("out", m.key, m.value))
        outbox, messages = framed(out)
        return Prepared(batch, rows, messages, outbox,  # type: ignore[arg-type]
                        offsets_of(batch, positions, ends), BatchReport(messages=len(batch)))

    def forget(self) -> None:
        self.forgotten += 1

    def full(self) -> bool:
        return False

    def due(self, *_: Any) -> list[Message]:
        return []

    def report(self, *_: Any) -> None:
        return None


def _logs(per_partition: int, poison_at: TP | None = None) -> dict[TP, list[bytes]]:
    logs = {(t, p): [f"{t}/{p}/{i}".encode() for i in range(per_partition)]
            for t in TOPICS for p in range(PARTITIONS)}
    if poison_at is not None:
        logs[poison_at][per_partition // 2] = POISON
    return logs


class Harness:
    def __init__(self, logs: dict[TP, list[bytes]]) -> None:
        self.logs = logs
        self.broker = Broker(PARTITIONS)
        self.broker.logs = {tp: [Record(b"k", v, None) for v in log] for tp, log in logs.items()}
        self.consumer = FakeConsumer(self.broker)
        self.producer = FakeProducer(self.broker)
        self.store = FakeStore()
        self.decider = FakeDecider()
        checkpoint = Checkpoint(store=self.store, producer=self.producer,  # type: ignore[arg-type]
                                failures=DeliveryFailures(), flush_timeout=1.0)
        observer = NullObserver()
        self.host = Host(consumer=self.consumer, producer=self.producer,  # type: ignore[arg-type]
                         store=self.store, decider=self.decider,
                         writer=Writer(checkpoint, observer), group="g", observer=observer,
                         health=Health(), batch_max=7, idle_wait=0.01, sweep_interval=0.05,
                         give_up=30)
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.host.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - reported by `finish`
            self.failure.append(exc)

    def __enter__(self) -> Harness:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def wait(self, done: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert not self.failure, self.failure
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.005)

    def drained(self) -> bool:
        return (all(self.store.committed.get(tp, 0) == len(log) for tp, log in self.logs.items())
                and not self.store.outbox)

    def assert_exactly_once(self, dead: set[bytes] = frozenset()) -> None:  # type: ignore[assignment]
        values = [v for _, v in self.store.applied]
        want = sorted([v for log in self.logs.values() for v in log if v != POISON]
                      + [b"dlq:" + v for v in dead])
        assert sorted(values) == want  # nothing lost, nothing twice
        # every output this member committed was emitted (perhaps more than once, the same)
        emitted = {r.value for topic in ("out", "dlq") for r in self.broker.records(topic)}
        assert {v.removeprefix(b"dlq:") for who, v in self.store.applied if who == "host"
                } <= emitted


def test_a_rebalance_while_a_batch_is_in_flight_commits_it_first() -> None:
    h = Harness(_logs(40))
    h.store.gate = threading.Event()
    with h:
        h.wait(h.store.waiting.is_set, "a batch in flight")
        # the group takes every partition away and gives them back while the writer holds
        # a batch; the revocation must wait for that batch's commit, not drop or redo it
        everything = list(h.logs)
        h.consumer.rebalance(("on_revoke", everything), ("on_assign", everything))
        threading.Timer(0.2, h.store.gate.set).start()
        h.wait(h.drained, "the drain")
    assert not h.failure
    h.assert_exactly_once()
    assert h.decider.forgotten >= 2  # the cache was dropped at the revocation and the resync


def test_a_fenced_commit_is_dropped_and_the_member_continues_from_postgres() -> None:
    h = Harness(_logs(40))
    h.store.gate = threading.Event()
    stolen = ("in.a", 0)
    with h:
        h.wait(h.store.waiting.is_set, "a batch in flight")
        # meanwhile another member committed the first 25 messages of one partition
        h.store.steal(stolen, h.logs[stolen], 25)
        h.store.gate.set()
        h.wait(h.drained, "the drain")
    assert not h.failure
    h.assert_exactly_once()
    assert [v for who, v in h.store.applied if who == "other"] == h.logs[stolen][:25]


def test_an_outage_while_isolating_a_poison_message_is_waited_out() -> None:
    poisoned = ("in.b", 1)
    h = Harness(_logs(30, poison_at=poisoned))
    h.store.fail_inline.append(_outage())  # isolation commits its parts inline
    with h:
        h.wait(h.drained, "the drain")
    assert not h.failure
    assert not h.store.fail_inline, "the outage came while isolating"
    h.assert_exactly_once(dead={POISON})
    assert h.store.applied.count(("host", b"dlq:" + POISON)) == 1


@pytest.mark.parametrize("reason", ["outage", "fenced"])
def test_a_failed_commit_re_emits_nothing_new_and_loses_nothing(reason: str) -> None:
    h = Harness(_logs(25))
    h.store.fail_next.append(_outage() if reason == "outage" else FencedError("moved"))
    with h:
        h.wait(h.drained, "the drain")
    assert not h.failure
    h.assert_exactly_once()
