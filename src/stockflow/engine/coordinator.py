"""The order coordinator's decider: `inventory.order-requests` and `inventory.reservations`
(co-partitioned, keyed by order_id) through `domain.orders.decide`, hosted by the same
engine as the stock processor (`host`), so its state and positions are in Postgres, one
transaction per batch, and its outputs leave through the outbox with deterministic ids.

Per batch: the orders' states come from the cache (what this member decided, committed or
still in flight) or from Postgres; the registry and the sellable units of the SKUs the
batch's orders ask for are read in one snapshot, less the parts placed and not yet among
the processor's reservations (this member's own, from its cache, and other members'
from `order_parts`), so nothing is counted twice. Each decision then moves that count on,
so an order in the batch sees the parts placed by the ones before it.

No table of processed event ids: every input is idempotent in the decider (the same
order.requested, confirm, cancel or verdict again is a no-op), and positions in Postgres
make a redelivery after a crash impossible anyway.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from stockflow.adapters.db import orders as orders_db
from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.db.store import RejectedRow
from stockflow.adapters.observer import BatchReport, Observer
from stockflow.contract.emit import COORDINATOR_SOURCE, Message, order_message, output_id
from stockflow.contract.events import Reason, Rejection, envelope, parse_order_input
from stockflow.contract.topics import TP, TopicKind, Topics
from stockflow.domain.effects import Outcome, Output
from stockflow.domain.inputs import Limits
from stockflow.domain.order_inputs import OrderInput, OrderRequested
from stockflow.domain.order_state import HELD, Context, OrderState, PartStatus, Phase
from stockflow.domain.orders import decide, skus_of
from stockflow.domain.warehouses import Warehouse
from stockflow.engine.batch import Consumed, Prepared, dead_letter, framed, offsets_of
from stockflow.engine.failures import DecideError, describe

__all__ = ["CoordinatorDecider", "OrderWatch"]

_SWEEP_BATCH = 5000  # order.expired written per sweep at most
_SWEEP_AGAIN = 60.0  # seconds before an expiry still due is written again


class OrderWatch(Protocol):
    """What the coordinator tells its metrics (`adapters.order_metrics`). Told as batches
    are decided: a batch decided again after a failure is told again."""

    def status(self, status: str, reason: str | None) -> None:
        """An order status was emitted, and why."""
        ...

    def answered(self, seconds: float) -> None:
        """An order got its first status, `seconds` after it was requested."""
        ...

    def allocated(self, parts: int) -> None:
        """An order was allocated as this many parts."""
        ...

    def placed_again(self, parts: int) -> None:
        """This many parts were placed again (re-sourced)."""
        ...

    def backlog(self, open_orders: int, oldest_waiting: float) -> None:
        """Orders still open, and how long the oldest has waited, in seconds."""
        ...


class _Unwatched:
    def status(self, status: str, reason: str | None) -> None: ...

    def answered(self, seconds: float) -> None: ...

    def allocated(self, parts: int) -> None: ...

    def placed_again(self, parts: int) -> None: ...

    def backlog(self, open_orders: int, oldest_waiting: float) -> None: ...


_FIRST = frozenset({"order.allocated", "order.rejected", "order.cancelled"})
_BEFORE_ANSWER = frozenset({Phase.AWAITING, Phase.ALLOCATING})


class CoordinatorDecider:
    """The order lifecycle hosted by the engine (`ports.Decider`)."""

    def __init__(self, *, topics: Topics, limits: Limits, ttl: timedelta,
                 cache_entries: int, watch: OrderWatch | None = None) -> None:
        self.topics, self.limits, self.ttl = topics, limits, ttl
        self.watch = watch or _Unwatched()
        self.cache_entries = cache_entries
        self.cache: dict[str, OrderState] = {}  # as decided, committed or in flight
        self.placing: set[str] = set()  # cached orders with parts placed, not yet judged
        self.written: dict[str, float] = {}  # order.expired ids swept -> when

    @property
    def inputs(self) -> list[str]:
        return [self.topics.name(TopicKind.ORDER_REQUESTS),
                self.topics.name(TopicKind.RESERVATIONS)]

    def forget(self) -> None:
        self.cache.clear()
        self.placing.clear()

    def _cached(self, state: OrderState) -> None:
        self.cache[state.order_id] = state
        if any(p.status is PartStatus.PLACED for p in state.parts):
            self.placing.add(state.order_id)
        else:
            self.placing.discard(state.order_id)

    def full(self) -> bool:
        return len(self.cache) > self.cache_entries

    def report(self, reads: Any, observer: Observer) -> None:
        observer.on_cache(len(self.cache))
        self.watch.backlog(*orders_db.backlog(reads))

    def decide(self, reads: Any, batch: list[Consumed], *, positions: Mapping[TP, int],
               ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str] | None = None,
               ) -> Prepared:
        try:
            return self._decide(reads, batch, positions, ends, dead or {})
        except Exception as exc:
            raise DecideError(f"deciding a batch of {len(batch)} failed") from exc

    def _decide(self, reads: Any, batch: list[Consumed], positions: Mapping[TP, int],
                ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str]) -> Prepared:
        started = time.monotonic()
        report = BatchReport(messages=len(batch))
        kinds = {name: self.topics.kind(name) for name in {m.topic for m in batch}}
        out: dict[int, list[Message]] = {}
        parsed: list[tuple[Consumed, OrderInput]] = []
        for msg in batch:
            got = parse_order_input(kinds[msg.topic], msg.key, msg.value, self.limits)
            if (why := dead.get((msg.topic, msg.partition, msg.offset))) is not None:
                ident = (got.id, got.type) if isinstance(got, OrderInput) else (
                    got.event_id, got.event_type)
                got = Rejection(Reason.PROCESSING_ERROR, why, *ident)
            if isinstance(got, Rejection):
                dead_letter(self.topics, msg, got, kinds[msg.topic], report, out)
            else:
                parsed.append((msg, got))
        rows = orders_db.OrderRows()
        prepared = Prepared(batch, rows, [], [], offsets_of(batch, positions, ends), report,
                            started=started)
        if parsed:
            self._decide_all(reads, parsed, kinds, rows, prepared, out)
        prepared.outbox, prepared.messages = framed(out)
        report.emitted = len(prepared.messages)
        return prepared

    def _decide_all(self, reads: Any, parsed: list[tuple[Consumed, OrderInput]],
                    kinds: dict[str, TopicKind], rows: orders_db.OrderRows,
                    prepared: Prepared, out: dict[int, list[Message]]) -> None:
        snapshot = self._snapshot(reads, [ev for _, ev in parsed])
        now = datetime.now(UTC)
        stamp = now.isoformat()
        report = prepared.report

        def refuse(msg: Consumed, ev: OrderInput, reason: Reason, message: str,
                   exc: BaseException | None = None) -> None:
            # to the DLQ, and kept by event id for the API's ?wait (as the processor does)
            dead_letter(self.topics, msg, Rejection(reason, message, ev.id, ev.type),
                        kinds[msg.topic], report, out, exc)
            rows.rejected.append(RejectedRow(ev.id, ev.order_id, reason.value, message))

        for msg, ev in parsed:
            state = self.cache.get(ev.order_id)
            context = Context(snapshot.warehouses, snapshot.figures(skus_of(state, ev)), now,
                              self.ttl, snapshot.voided.get(ev.order_id, frozenset()))
            try:
                decision = decide(state, ev, context)
            except Exception as exc:  # noqa: BLE001 - one event's failure must not stop the rest
                refuse(msg, ev, Reason.PROCESSING_ERROR, describe(exc), exc)
                continue
            label = kinds[msg.topic].value
            if decision.outcome is Outcome.REJECTED:
                refuse(msg, ev, Reason(decision.reason), decision.message)
                continue
            report.events[(label, ev.type, decision.outcome.value)] += 1
            new = decision.state
            if new is not None and new != state:
                self._cached(new)
                rows.states[ev.order_id] = (new, msg.partition)
                snapshot.moved(ev.order_id, new)
            if decision.outcome is Outcome.APPLIED:
                prepared.event_times.append(ev.time.timestamp())
            self._tell(state, decision.state, decision.commands, decision.statuses, now,
                       requested=isinstance(ev.data, OrderRequested))
            sent = out.setdefault(msg.partition, [])
            who = _on_behalf_of(ev, kinds[msg.topic], new or state)
            for command in decision.commands:
                sent.append(order_message(self.topics, TopicKind.ORDERS, ev.order_id, command,
                                          stamp, who))
            for status in decision.statuses:
                sent.append(order_message(self.topics, TopicKind.ORDER_STATUS, ev.order_id,
                                          status, stamp))
                rows.statuses.append(orders_db.StatusRow(
                    output_id(ev.order_id, status.type, status.line), ev.order_id,
                    status.type, orders_db.dumped(status.data), ev.id))

    def _tell(self, before: OrderState | None, after: OrderState | None,
              commands: tuple[Output, ...], statuses: tuple[Output, ...], now: datetime, *,
              requested: bool) -> None:
        placed = sum(1 for c in commands if c.type == "order.placed")
        if placed and not requested:
            self.watch.placed_again(placed)
        for status in statuses:
            self.watch.status(status.type.removeprefix("order."), status.data.get("reason"))
            if status.type == "order.allocated" and after is not None:
                self.watch.allocated(sum(1 for p in after.parts if p.status in HELD))
            first = before is None or before.phase in _BEFORE_ANSWER
            if status.type in _FIRST and first and after is not None and after.requested_at:
                self.watch.answered(max(0.0, (now - after.requested_at).total_seconds()))

    def _snapshot(self, reads: Any, events: list[OrderInput]) -> _Snapshot:
        """States into the cache, then the registry and the units allocation may take."""
        missing = sorted({ev.order_id for ev in events} - self.cache.keys())
        if missing:
            for state in orders_db.fetch(reads, orders=missing, keys=[],
                                         cached_parts=[]).states.values():
                self._cached(state)
        warehouses = tuple(r.warehouse for r in warehouses_db.listed(reads, inactive=True))
        skus = set().union(*(skus_of(self.cache.get(ev.order_id), ev) for ev in events))
        keys = sorted(f"{sku}@{w.code}" for sku in skus for w in warehouses)
        wanted = set(keys)
        placing = [self.cache[o] for o in self.placing]
        mine = [(p.key, s.order_id, p.id) for s in placing for p in s.parts
                if p.status is PartStatus.PLACED and p.key in wanted]
        got = orders_db.fetch(reads, orders=[], keys=keys, cached_parts=mine)
        snapshot = _Snapshot(warehouses, got.sellable, got.held)
        for order_id, part_id in got.voided:
            snapshot.voided[order_id] = snapshot.voided.get(order_id, frozenset()) | {part_id}
        for part in got.in_flight:
            if part.order_id not in self.cache:  # the cache knows its own orders better
                snapshot.total[part.key] += part.quantity
        for state in placing:
            snapshot.moved(state.order_id, state)
        return snapshot

    # --- the sweeper -------------------------------------------------------------------

    def due(self, reads: Any, partitions: list[int]) -> list[Message]:
        """order.expired for orders whose deadline passed before they were confirmed, or
        with a part the processor will never judge (see `domain.orders`)."""
        now = datetime.now(UTC)
        wall = time.monotonic()
        found = orders_db.due(reads, partitions, now, _SWEEP_BATCH)
        fresh, still = [], set()
        for order_id, why in found:
            ident = output_id(order_id, "order.expired", why)
            still.add(ident)
            if wall - self.written.get(ident, -_SWEEP_AGAIN) < _SWEEP_AGAIN:
                continue  # written a moment ago: on its way
            self.written[ident] = wall
            doc = envelope("order.expired", {"order_id": order_id}, id_=ident, time=now,
                           source=f"{COORDINATOR_SOURCE}/sweeper")
            fresh.append(Message(self.topics.name(TopicKind.ORDER_REQUESTS), order_id.encode(),
                                 json.dumps(doc, separators=(",", ":")).encode()))
        self.written = {i: w for i, w in self.written.items() if i in still}
        return fresh


def _on_behalf_of(ev: OrderInput, kind: TopicKind, state: OrderState | None) -> str:
    """Who a part's command is for (the ledger's actor names them after the coordinator):
    whoever asked for it on `inventory.order-requests` (the order, its confirm or cancel),
    else (the processor's verdicts, the sweeper) whoever requested the order."""
    if kind is TopicKind.ORDER_REQUESTS and ev.source \
            and not ev.source.startswith(COORDINATOR_SOURCE):
        return ev.source
    return (state.requested_by if state is not None else None) or ""


class _Snapshot:
    """Sellable units per key less the parts in flight, kept current through a batch: an
    order's parts counted in flight are replaced by its new state's after each decision."""

    def __init__(self, warehouses: tuple[Warehouse, ...], sellable: dict[str, int],
                 held: set[tuple[str, str, str]]) -> None:
        self.warehouses, self.sellable, self.held = warehouses, sellable, held
        self.voided: dict[str, frozenset[str]] = {}  # order_id -> parts never to be judged
        self.total: Counter[str] = Counter()
        self.by_order: dict[str, Counter[str]] = {}

    def moved(self, order_id: str, state: OrderState) -> None:
        now = Counter[str]()
        for p in state.parts:
            if p.status is PartStatus.PLACED and (p.key, order_id, p.id) not in self.held:
                now[p.key] += p.quantity
        self.total.subtract(self.by_order.get(order_id, Counter()))
        self.total.update(now)
        self.by_order[order_id] = now

    def figures(self, skus: frozenset[str]) -> dict[tuple[str, str], int]:
        return {(sku, w.code): self.sellable.get(f"{sku}@{w.code}", 0)
                - self.total.get(f"{sku}@{w.code}", 0)
                for sku in skus for w in self.warehouses}
