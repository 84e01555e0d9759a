"""The stock processor's decider: the four co-partitioned input topics through the stock
rules (`domain.rules.apply`), behind a cache of the keys' state, with the expiry sweeper
as its clock. `prepare` is its step 1 for one batch (see `checkpoint`)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stockflow.adapters.db import queries, store
from stockflow.adapters.observer import BatchReport, Observer
from stockflow.contract.emit import Message, output_message
from stockflow.contract.events import Reason, Rejection, parse
from stockflow.contract.topics import TP, TopicKind, Topics
from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import Event, Limits
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy
from stockflow.engine.batch import Consumed, Prepared, dead_letter, framed, offsets_of
from stockflow.engine.cache import Reads, StateCache
from stockflow.engine.failures import DecideError, describe
from stockflow.engine.sweeper import Sweeper

__all__ = ["StockDecider", "prepare"]

log = logging.getLogger("stockflow.engine.stock")

_APPLIED, _NOOP = Outcome.APPLIED.value, Outcome.NOOP.value
_THRESHOLDS_SET = "stock.thresholds-set"
_NO_ENDS: Mapping[TP, int] = {}


class StockDecider:
    """The stock rules hosted by the engine (`ports.Decider`)."""

    def __init__(self, *, topics: Topics, policy: Policy, limits: Limits,
                 cache_entries: int) -> None:
        self.topics, self.policy, self.limits = topics, policy, limits
        self.cache = StateCache(policy, cache_entries)
        self.sweeper = Sweeper(topics)

    @property
    def inputs(self) -> list[str]:
        return self.topics.inputs

    def decide(self, reads: Any, batch: list[Consumed], *, positions: Mapping[TP, int],
               ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str] | None = None,
               ) -> Prepared:
        return prepare(reads, self.cache, batch, topics=self.topics, policy=self.policy,
                       limits=self.limits, positions=positions, ends=ends, dead=dead)

    def forget(self) -> None:
        self.cache.clear()

    def full(self) -> bool:
        return self.cache.full()

    def due(self, reads: Any, partitions: list[int]) -> list[Message]:
        """Expiries of pending reservations past their time."""
        return self.sweeper.due(reads, partitions, datetime.now(UTC))

    def report(self, reads: Any, observer: Observer) -> None:
        observer.on_cache(self.cache.size())
        observer.on_alerts(queries.open_alerts(reads))


def prepare(
    conn: store.Conn, cache: StateCache, batch: list[Consumed], *, topics: Topics,
    policy: Policy, limits: Limits, positions: Mapping[TP, int],
    ends: Mapping[TP, int] = _NO_ENDS,
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
    policy: Policy, limits: Limits, positions: Mapping[TP, int],
    ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str] | None,
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
            dead_letter(topics, msg, got, kinds[msg.topic], report, out_by_part)
        else:
            parsed.append((msg, got))
    reads = cache.warm(conn, [e for _, e in parsed])
    writes = store.Writes()
    prepared = Prepared(batch, writes, [], [], offsets_of(batch, positions, ends), report,
                        started=started)
    _decide(parsed, reads, cache, kinds, topics, policy, writes, prepared, out_by_part)
    prepared.outbox, prepared.messages = framed(out_by_part)
    report.emitted = len(prepared.messages)
    return prepared


def _decide(
    parsed: list[tuple[Consumed, Event]], reads: list[Reads], cache: StateCache,
    kinds: dict[str, TopicKind], topics: Topics, policy: Policy, writes: store.Writes,
    prepared: Prepared, out_by_part: dict[int, list[Message]],
) -> None:
    """Run the rules over the batch in consume order and collect what to write and emit."""
    now = datetime.now(UTC).isoformat()
    report, times = prepared.report, prepared.event_times
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
            dead_letter(topics, msg, rejection, kinds[msg.topic], report, out_by_part, exc)
            writes.rejected.append(store.RejectedRow(ev.id, key, rejection.reason.value,
                                                     rejection.message))
            continue
        outcome = decision.outcome
        if outcome is Outcome.REJECTED:
            rejection = Rejection(Reason(decision.reason), decision.message, ev.id, ev.type)
            dead_letter(topics, msg, rejection, kinds[msg.topic], report, out_by_part)
            writes.rejected.append(store.RejectedRow(ev.id, key, rejection.reason.value,
                                                     rejection.message))
            continue
        label = _NOOP if outcome is Outcome.NOOP else _APPLIED
        report.events[(labels[msg.topic], ev.type, label)] += 1
        writes.processed.append(store.ProcessedRow(  # positional: cheaper per event
            ev.id, key, msg.topic, msg.partition, msg.offset, label))
        cache.record(ev, decision)
        if label is _NOOP:
            continue
        before.setdefault(key, state.severity)
        dirty[key] = ev.id
        if decision.ledger is not None:
            writes.ledger.append(store.LedgerRow(key, decision.ledger))
        if ev.type == _THRESHOLDS_SET:  # rare; their values, for the forecast chart
            writes.thresholds.append(store.threshold_row(state, decision.state, ev.id, ev.time))
        for r in decision.lines:
            writes.lines[(key, r.order_id, r.line_id)] = store.LineRow(r, msg.partition)
        for ref, q in decision.refs:
            writes.refs.append(store.RefRow(key, ref, q))
        if decision.po is not None:
            writes.purchase_orders[(key, decision.po.po_id)] = decision.po
        times.append(ev.time.timestamp())
        for out in decision.outputs:
            if out.type == "oversell.detected":
                report.oversells[str(out.data["kind"])] += 1
        out_by_part[msg.partition].extend(outputs)
    writes.states = [cache.states[k] for k in dirty]
    # An open alert row changes when severity moved, or while open, to carry new figures.
    writes.alerts_changed = [store.AlertRow(cache.states[k], cause) for k, cause in dirty.items()
                             if cache.states[k].severity != "ok" or before[k] != "ok"]
