"""One consumed batch, applied exactly once, in four steps; each raises its own error
(`stockflow.engine.failures`), whose cause says why.

1. **Decide** (`prepare`, on the consuming thread; DecideError): parse every message at
   the edge (rejections become DLQ messages); fetch from Postgres, in one round trip,
   whatever state the cache lacks; run the pure rules over the events in consume order;
   collect the rows to write, the outgoing messages and the new offsets.
2. **Commit** (`commit`, on the writer thread; CommitError): one Postgres transaction
   with state, ledger, reservations, references, alerts, processed ids, the outgoing
   messages (outbox) and the consumed offsets, the last as a compare-and-set: a member
   whose positions moved under it is fenced (FencedError) and the transaction rolled back.
3. **Emit** (`Checkpoint.emit`; EmitError): produce the outgoing messages and flush them.
4. **Mark emitted** (MarkError): delete their outbox rows, inside the next batch's
   transaction or, when no batch comes, on their own (`Checkpoint.mark_emitted`). After a
   crash the next owner of the partition re-emits whatever is left, with the same ids.

`Checkpoint.write` runs steps 2 to 4 for one decided batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from confluent_kafka import Producer

from stockflow.adapters.db import store
from stockflow.adapters.kafka import DeliveryFailures, produce_all
from stockflow.adapters.observer import BatchReport
from stockflow.adapters.outbox import encode
from stockflow.contract.emit import Message, dlq_message, output_message
from stockflow.contract.events import Reason, Rejection, parse
from stockflow.contract.topics import TP, TopicKind, Topics
from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import Event, Limits
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy
from stockflow.engine.cache import Reads, StateCache
from stockflow.engine.failures import (
    CommitError,
    DecideError,
    EmitError,
    MarkError,
    describe,
)

__all__ = ["Checkpoint", "Consumed", "Offsets", "Prepared", "commit", "prepare"]

log = logging.getLogger("stockflow.engine.checkpoint")

Offsets = store.Offsets

_APPLIED, _NOOP = Outcome.APPLIED.value, Outcome.NOOP.value


class Consumed(NamedTuple):
    """One message as consumed, reduced to what the checkpoint needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass
class Prepared:
    batch: list[Consumed]
    writes: store.Writes
    messages: list[Message]
    offsets: Offsets
    report: BatchReport
    event_times: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    decided: float = 0.0  # when step 1 ended (monotonic)


def prepare(
    conn: store.Conn, cache: StateCache, batch: list[Consumed], *, topics: Topics,
    policy: Policy, limits: Limits, positions: dict[TP, int],
    ends: dict[TP, int] | None = None,
    dead: Mapping[tuple[str, int, int], str] | None = None,  # (topic, partition, offset)
) -> Prepared:
    """Step 1 for `batch`: decide it against the cache (warmed from `conn`). `ends` are the
    consumer's positions after the batch, when known. Messages in `dead` are not applied
    but dead-lettered as processing_error, with the given description of what failed."""
    try:
        return _prepare(conn, cache, batch, topics=topics, policy=policy, limits=limits,
                        positions=positions, ends=ends, dead=dead)
    except Exception as exc:
        raise DecideError(f"deciding a batch of {len(batch)} failed") from exc


def _prepare(
    conn: store.Conn, cache: StateCache, batch: list[Consumed], *, topics: Topics,
    policy: Policy, limits: Limits, positions: dict[TP, int],
    ends: dict[TP, int] | None, dead: Mapping[tuple[str, int, int], str] | None,
) -> Prepared:
    started = time.monotonic()
    report = BatchReport(messages=len(batch))
    kinds = {name: topics.kind(name) for name in {m.topic for m in batch}}
    out_by_part: dict[int, list[Message]] = defaultdict(list)
    parsed: list[tuple[Consumed, Event]] = []
    for msg in batch:
        got = parse(kinds[msg.topic], msg.key, msg.value, limits)
        if dead and (why := dead.get((msg.topic, msg.partition, msg.offset))) is not None:
            ident = (got.id, got.type) if isinstance(got, Event) else (
                got.event_id, got.event_type)
            got = Rejection(Reason.PROCESSING_ERROR, why, *ident)
        if isinstance(got, Rejection):
            _reject(topics, msg, got, kinds[msg.topic], report, out_by_part)
        else:
            parsed.append((msg, got))
    reads = cache.warm(conn, [e for _, e in parsed])
    prepared = Prepared(batch, store.Writes(), [], _offsets(batch, positions, ends or {}),
                        report, started=started)
    _decide(parsed, reads, cache, kinds, topics, policy, prepared, out_by_part)
    for part, msgs in sorted(out_by_part.items()):
        prepared.writes.outbox.append(
            store.OutboxRow(partition=part, messages=len(msgs), payload=encode(msgs)))
        prepared.messages.extend(msgs)
    report.emitted = len(prepared.messages)
    return prepared


def _decide(
    parsed: list[tuple[Consumed, Event]], reads: list[Reads], cache: StateCache,
    kinds: dict[str, TopicKind], topics: Topics, policy: Policy, prepared: Prepared,
    out_by_part: dict[int, list[Message]],
) -> None:
    """Run the rules over the batch in consume order and collect what to write and emit."""
    now = datetime.now(UTC).isoformat()
    writes, report, times = prepared.writes, prepared.report, prepared.event_times
    before: dict[str, str] = {}  # key -> severity before this batch
    dirty: dict[str, str] = {}  # key -> last cause event id
    # Label strings up front: an enum's .value costs a descriptor call per access.
    labels = {topic: kind.value for topic, kind in kinds.items()}
    for (msg, ev), needs in zip(parsed, reads, strict=True):
        if ev.id in cache.ids:
            report.events[(labels[msg.topic], ev.type, "duplicate")] += 1
            continue
        key = ev.key
        state = cache.state_for(ev, needs)
        try:
            decision = apply(state, ev, policy)
            outputs = [output_message(topics, ev.id, out, now) for out in decision.outputs]
        except Exception as exc:  # noqa: BLE001 - one event's failure must not stop the rest
            rejection = Rejection(Reason.PROCESSING_ERROR, describe(exc), ev.id, ev.type)
            _reject(topics, msg, rejection, kinds[msg.topic], report, out_by_part, exc)
            writes.rejected.append(store.RejectedRow(ev.id, key, rejection.reason.value,
                                                     rejection.message))
            continue
        outcome = decision.outcome
        if outcome is Outcome.REJECTED:
            rejection = Rejection(Reason(decision.reason), decision.message, ev.id, ev.type)
            _reject(topics, msg, rejection, kinds[msg.topic], report, out_by_part)
            writes.rejected.append(store.RejectedRow(ev.id, key, rejection.reason.value,
                                                     rejection.message))
            continue
        label = _NOOP if outcome is Outcome.NOOP else _APPLIED
        report.events[(labels[msg.topic], ev.type, label)] += 1
        writes.processed.append(store.ProcessedRow(
            event_id=ev.id, key=key, topic=msg.topic, partition=msg.partition,
            offset=msg.offset, outcome=label))
        cache.record(ev, decision)
        if label is _NOOP:
            continue
        before.setdefault(key, state.severity)
        dirty[key] = ev.id
        if decision.ledger is not None:
            writes.ledger.append(store.LedgerRow(key, decision.ledger))
        for r in decision.lines:
            writes.lines[(key, r.order_id, r.line_id)] = store.LineRow(r, msg.partition)
        for ref, q in decision.refs:
            writes.refs.append(store.RefRow(key, ref, q))
        times.append(ev.time.timestamp())
        for out in decision.outputs:
            if out.type == "oversell.detected":
                report.oversells[str(out.data["kind"])] += 1
        out_by_part[msg.partition].extend(outputs)
    writes.states = [cache.states[k] for k in dirty]
    # An open alert row changes when severity moved, or while open, to carry new figures.
    writes.alerts_changed = [store.AlertRow(cache.states[k], cause) for k, cause in dirty.items()
                             if cache.states[k].severity != "ok" or before[k] != "ok"]


def commit(conn: store.Conn, prepared: Prepared, *, group: str,
           delete_outbox: list[int]) -> list[int]:
    """Step 2: write and commit the batch (and step 4 for `delete_outbox`, the rows of
    earlier batches emitted since); returns the batch's outbox row ids."""
    started = time.monotonic()
    try:
        with conn.transaction():
            ids = store.write(conn, group, prepared.writes, offsets=prepared.offsets,
                              delete_outbox=delete_outbox)
    except Exception as exc:
        raise CommitError(f"committing a batch of {len(prepared.batch)} failed") from exc
    done = time.time()
    report = prepared.report
    report.stages["commit"] = time.monotonic() - started
    report.latencies = [max(0.0, done - t) for t in prepared.event_times]
    return ids


def _reject(topics: Topics, msg: Consumed, rejection: Rejection, kind: TopicKind,
            report: BatchReport, out: dict[int, list[Message]],
            exc: BaseException | None = None) -> None:
    level = logging.WARNING if rejection.reason is Reason.PROCESSING_ERROR else logging.INFO
    log.log(level, "rejected to the DLQ: %s", rejection.message, exc_info=exc, extra={
        "event_id": rejection.event_id, "key": (msg.key or b"")[:200].decode("utf-8", "replace"),
        "reason": rejection.reason.value, "topic": msg.topic, "partition": msg.partition,
        "offset": msg.offset})
    report.rejects[rejection.reason.value] += 1
    report.events[(kind.value, rejection.event_type or "unknown", "rejected")] += 1
    out[msg.partition].append(dlq_message(topics, rejection, msg.topic, msg.partition,
                                          msg.offset, msg.key, msg.value, msg.headers))


def _offsets(batch: list[Consumed], positions: dict[TP, int], ends: dict[TP, int]) -> Offsets:
    last: dict[TP, int] = {}
    for m in batch:
        # max, not last: after a rebalance one batch can hold a partition's messages twice
        tp = (m.topic, m.partition)
        last[tp] = max(last.get(tp, -1), m.offset)
    return {tp: store.Advance(expected=positions.get(tp, -1), to=max(off + 1, ends.get(tp, -1)))
            for tp, off in last.items()}


class Checkpoint:
    """Steps 2 to 4 for one member: what it emitted and has not yet marked, the producer
    that emits, and how long a flush may wait (a stop cuts it short)."""

    def __init__(self, *, producer: Producer, failures: DeliveryFailures, group: str,
                 flush_timeout: float, stop: threading.Event) -> None:
        self.producer, self.failures, self.group = producer, failures, group
        self.flush_timeout, self.stop = flush_timeout, stop
        self.emitted: list[int] = []  # outbox rows delivered, to delete in step 4

    def write(self, conn: store.Conn, prepared: Prepared) -> Offsets:
        """Steps 2, 3, and 4 for the batches emitted before; returns the batch's offsets."""
        ids = commit(conn, prepared, group=self.group, delete_outbox=self.emitted)
        self.emitted = []
        started = time.monotonic()
        self.emit(prepared.messages)
        prepared.report.stages["emit"] = time.monotonic() - started
        self.emitted = ids
        return prepared.offsets

    def emit(self, messages: Iterable[Message]) -> None:
        """Step 3: produce and flush; EmitError (an outage) unless all were delivered."""
        try:
            produce_all(self.producer, messages)
        except Exception as exc:
            raise EmitError("producing the outputs failed") from exc
        deadline = time.monotonic() + self.flush_timeout
        while (left := self.producer.flush(1.0)) and time.monotonic() < deadline \
                and not self.stop.is_set():
            pass
        failed = self.failures.take()
        if left or failed:
            raise EmitError(f"{left} outputs undelivered, failures: {failed[:3]}")

    def mark_emitted(self, conn: store.Conn) -> None:
        """Step 4 on its own, when no next batch carries it."""
        if not self.emitted:
            return
        try:
            with conn.transaction():
                store.delete_outbox_rows(conn, self.emitted)
        except Exception as exc:
            raise MarkError(f"deleting {len(self.emitted)} emitted outbox rows failed") from exc
        self.emitted = []
