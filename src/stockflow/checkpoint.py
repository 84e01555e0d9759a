"""One consumed batch, applied exactly once.

1. Parse every message at the edge; rejections become DLQ messages.
2. In one Postgres transaction: load the state the batch touches (one pipelined round
   trip), run the pure rules over the events in consume order, then write state, ledger,
   reservations, references, alerts, processed ids, the batch's outgoing messages (outbox)
   and the consumed offsets (compare-and-set: a member whose positions moved under it is
   fenced and its batch rolled back). Commit.
3. Produce the outgoing messages and flush them.
4. Their outbox rows are deleted in the next batch's transaction; after a crash, the next
   owner of the partition re-emits whatever is left, with the same ids.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from stockflow.db import store
from stockflow.domain.effects import Outcome
from stockflow.domain.rules import apply, order_of, references_of
from stockflow.domain.state import Policy, StockState
from stockflow.emit import dlq_message, output_message
from stockflow.events import Event, OversellDetected, Reason, Rejection, TopicKind, parse
from stockflow.metrics import BatchReport
from stockflow.outbox import Message, encode
from stockflow.topics import Topics

__all__ = ["Consumed", "Outcome", "Result", "run"]


@dataclass(frozen=True, slots=True)
class Consumed:
    """One message as consumed, reduced to what the checkpoint needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass
class Result:
    report: BatchReport
    outbox_ids: list[int]
    messages: list[Message]
    new_positions: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_quantity: int
    max_bytes: int


def run(
    conn: psycopg.Connection[tuple[object, ...]], batch: list[Consumed], *, topics: Topics,
    group: str, policy: Policy, limits: Limits, positions: dict[tuple[str, int], int],
    delete_outbox: list[int],
) -> Result:
    """Steps 1 and 2 for `batch`; the caller produces `Result.messages` (step 3) and hands
    `Result.outbox_ids` back as `delete_outbox` of the next batch (step 4)."""
    started = time.monotonic()
    now = datetime.now(UTC)
    report = BatchReport(messages=len(batch))
    parsed: list[tuple[Consumed, Event]] = []
    out_by_part: dict[int, list[Message]] = defaultdict(list)
    for msg in batch:
        kind = topics.kind(msg.topic)
        got = parse(kind, msg.key, msg.value, max_quantity=limits.max_quantity,
                    max_bytes=limits.max_bytes)
        if isinstance(got, Rejection):
            _reject(topics, msg, got, kind, report, out_by_part)
        else:
            parsed.append((msg, got))

    db_started = time.monotonic()
    with conn.transaction():
        loaded = store.load(
            conn,
            keys={e.key for _, e in parsed},
            lines={(e.key, o) for _, e in parsed if (o := order_of(e)) is not None},
            refs={(e.key, r) for _, e in parsed for r in references_of(e)},
            ids=[e.id for _, e in parsed],
            policy=policy,
        )
        writes = _decide(parsed, loaded, topics, policy, now, report, out_by_part)
        messages: list[Message] = []
        for part, msgs in sorted(out_by_part.items()):
            writes.outbox.append((part, len(msgs), encode(msgs)))
            messages.extend(msgs)
        offsets = _offsets(batch, positions)
        ids = store.write(conn, group, writes, offsets=offsets, delete_outbox=delete_outbox)
    committed = time.time()
    report.latencies = [max(0.0, committed - t) for t in report.latencies]
    report.db_seconds = time.monotonic() - db_started
    report.seconds = time.monotonic() - started
    report.emitted = len(messages)
    return Result(report, ids, messages, {tp: nxt for tp, (_, nxt) in offsets.items()})


def _decide(
    parsed: list[tuple[Consumed, Event]], loaded: store.Loaded, topics: Topics, policy: Policy,
    now: datetime, report: BatchReport, out_by_part: dict[int, list[Message]],
) -> store.Writes:
    """Run the rules over the batch in consume order and collect what to write and emit."""
    writes = store.Writes()
    states, seen = loaded.states, loaded.seen
    initial_severity = {k: s.severity for k, s in states.items()}
    dirty: dict[str, str] = {}  # key -> last cause event id
    for msg, ev in parsed:
        kind = topics.kind(msg.topic)
        if ev.id in seen:
            report.events[(kind.value, ev.type, "duplicate")] += 1
            continue
        decision = apply(states[ev.key], ev, policy)
        if decision.outcome is Outcome.REJECTED:
            rejection = Rejection(Reason.NEGATIVE_RESULT, decision.message, ev.id, ev.type)
            _reject(topics, msg, rejection, kind, report, out_by_part)
            continue
        seen.add(ev.id)
        report.events[(kind.value, ev.type, decision.outcome.value)] += 1
        writes.processed.append((ev.id, ev.key, msg.topic, msg.partition, msg.offset,
                                 decision.outcome.value))
        if decision.outcome is Outcome.NOOP:
            continue
        states[ev.key] = decision.state
        dirty[ev.key] = ev.id
        if decision.ledger is not None:
            writes.ledger.append((ev.key, decision.ledger))
        for r in decision.lines:
            writes.lines[(ev.key, r.order_id, r.line_id)] = (r, msg.partition)
        writes.refs.extend((ev.key, ref, q) for ref, q in decision.refs)
        report.latencies.append(ev.time.timestamp())  # made relative once committed
        for out in decision.outputs:
            if isinstance(out.data, OversellDetected):
                report.oversells[out.data.kind] += 1
            out_by_part[msg.partition].append(output_message(topics, ev.id, out, now))
    writes.states = [states[k] for k in dirty]
    writes.alerts_changed = _alert_changes(states, dirty, initial_severity)
    return writes


def _reject(topics: Topics, msg: Consumed, rejection: Rejection, kind: TopicKind,
            report: BatchReport, out: dict[int, list[Message]]) -> None:
    report.rejects[rejection.reason.value] += 1
    report.events[(kind.value, rejection.event_type or "unknown", "rejected")] += 1
    out[msg.partition].append(dlq_message(topics, rejection, msg.topic, msg.partition,
                                          msg.offset, msg.key, msg.value, msg.headers))


def _alert_changes(states: dict[str, StockState], dirty: dict[str, str],
                   initial: dict[str, str]) -> list[tuple[StockState, str]]:
    """Keys whose open alert row must change: severity moved, or still open with new figures."""
    return [(states[k], cause) for k, cause in dirty.items()
            if states[k].severity != initial.get(k, "ok") or states[k].severity != "ok"]


def _offsets(batch: list[Consumed], positions: dict[tuple[str, int], int],
             ) -> dict[tuple[str, int], tuple[int, int]]:
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        last[(m.topic, m.partition)] = m.offset
    return {tp: (positions.get(tp, -1), off + 1) for tp, off in last.items()}
