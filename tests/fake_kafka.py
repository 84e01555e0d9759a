"""Kafka as the engine's host sees it, in memory: a broker of partitioned logs, a consumer
that runs its rebalance callbacks inside `consume` (as librdkafka does) and a producer
whose messages become visible at `flush`. A `Life` makes every call a place where the
member may die: its schedule says at which of them, and once dead every call fails."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from stockflow.contract.topics import TP

__all__ = ["Broker", "Crash", "FakeConsumer", "FakeProducer", "Life", "Record"]


class Crash(BaseException):
    """The member died here. A BaseException, so no handler of the engine catches it."""


class Life:
    """One member's lifetime. `tick` counts its steps on `clock` (shared by all members,
    so one schedule of crashes spans them) and kills it at the scheduled ones."""

    def __init__(self, clock: list[int], crashes: frozenset[int] = frozenset()) -> None:
        self.clock, self.crashes = clock, crashes
        self.dead = False
        self.lock = threading.Lock()
        self.where = ""

    def tick(self, where: str) -> None:
        with self.lock:
            self.check()
            self.clock[0] += 1
            if self.clock[0] in self.crashes:
                self.dead, self.where = True, where
                raise Crash(where)

    def check(self) -> None:
        """A call that is no step of its own: it only fails once the member is dead."""
        if self.dead:
            raise Crash(f"already dead (at {self.where})")


ALIVE = Life([0])  # a member that never dies


class Record(NamedTuple):
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None


class Broker:
    """Topics of `partitions` partitions each, created on first use; a key always lands
    on the same partition (any stable hash co-partitions as well as murmur2)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.logs: dict[TP, list[Record]] = {}
        self.lock = threading.Lock()

    def create(self, topic: str) -> None:
        with self.lock:
            for p in range(self.partitions):
                self.logs.setdefault((topic, p), [])

    def append(self, topic: str, record: Record) -> None:
        self.create(topic)
        part = zlib.crc32(record.key) % self.partitions if record.key is not None else 0
        with self.lock:
            self.logs[(topic, part)].append(record)

    def records(self, topic: str) -> list[Record]:
        """Every record of `topic`, partition by partition."""
        return [r for p in range(self.partitions) for r in self.logs.get((topic, p), [])]

    def end(self, tp: TP) -> int:
        return len(self.logs.get(tp, []))


class _Msg:
    def __init__(self, topic: str, partition: int, offset: int, record: Record) -> None:
        self._t, self._p, self._o, self._r = topic, partition, offset, record

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes | None:
        return self._r.key

    def value(self) -> bytes:
        return self._r.value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._r.headers

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)  # not available


class FakeConsumer:
    """One member of a group that owns every partition of what it subscribes to. A
    rebalance asked for with `rebalance` runs inside the next `consume`."""

    def __init__(self, broker: Broker, life: Life = ALIVE) -> None:
        self.broker, self.life = broker, life
        self.fetch: dict[TP, int] = {}
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.pending: list[tuple[str, list[TP]]] = []
        self.lock = threading.Lock()

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        for topic in topics:
            self.broker.create(topic)
        self.callbacks = callbacks
        self.pending.append(("on_assign", [tp for tp in self.broker.logs if tp[0] in topics]))

    def rebalance(self, *steps: tuple[str, list[TP]]) -> None:
        with self.lock:
            self.pending.extend(steps)

    def consume(self, num_messages: int, timeout: float) -> list[_Msg]:
        with self.lock:
            steps, self.pending = self.pending, []
        for name, tps in steps:
            self.life.tick(f"consumer {name}")
            self.callbacks[name](self, [TopicPartition(t, p) for t, p in tps])
        out: list[_Msg] = []
        for tp, start in list(self.fetch.items()):
            log, at = self.broker.logs[tp], start
            while at < len(log) and len(out) < num_messages:
                out.append(_Msg(tp[0], tp[1], at, log[at]))
                at += 1
            self.fetch[tp] = at
        if out:
            self.life.tick(f"consumed {len(out)}")
        elif timeout:
            time.sleep(min(timeout, 0.002))
        return out

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.fetch = {(tp.topic, tp.partition): 0 if tp.offset == OFFSET_BEGINNING
                      else tp.offset for tp in partitions}

    def unassign(self) -> None:
        self.fetch = {}

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.fetch[(tp.topic, tp.partition)])
                for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, **_: bool) -> tuple[int, int]:
        return 0, self.broker.end((tp.topic, tp.partition))

    def commit(self, **_: Any) -> None:
        return None

    def list_topics(self, *_: Any, **__: Any) -> None:
        return None

    def close(self) -> None:
        self.life.check()


class FakeProducer:
    """Messages are queued by `produce` and appended to the broker by `flush`; a member
    that dies first loses what it queued, as a process's librdkafka queue is lost."""

    def __init__(self, broker: Broker, life: Life = ALIVE) -> None:
        self.broker, self.life = broker, life
        self.queued: list[tuple[str, Record]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None = None,
                headers: Iterable[tuple[str, bytes]] | None = None) -> None:
        self.life.check()
        self.queued.append((topic, Record(key, value, list(headers) if headers else None)))

    def flush(self, _timeout: float = 0) -> int:
        self.life.check()
        while self.queued:  # one at a time: a death in between delivers some, not all
            self.life.tick(f"deliver to {self.queued[0][0]}")
            topic, record = self.queued.pop(0)
            self.broker.append(topic, record)
        return 0

    def poll(self, _timeout: float = 0) -> int:
        return 0
