"""The processor's in-memory view of the stock it owns.

A member is the only writer of its partitions' keys, so what it has written is the truth
for them. Everything a batch writes is kept here before its transaction commits; anything
not here is read from Postgres, where it is committed. That lets the next batch be
decided while the previous one is still being committed. The cache is dropped on a
rebalance, when the member is fenced, and when it grows past its bound (only while no
batch is in flight).

With oversell remediation on, a key's pending, non-backordered lines are loaded with its
stock row and kept up to date from then on: a movement that lowers on_hand may release any
of them. They come with the rest of their order's lines at the key, so every line a
decision changes belongs to a cached (key, order) group.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from stockflow.adapters.db import store
from stockflow.domain.effects import Decision
from stockflow.domain.inputs import Event
from stockflow.domain.rules import (
    may_lower_on_hand,
    order_of,
    purchase_order_of,
    references_of,
)
from stockflow.domain.state import (
    EMPTY_LINES,
    EMPTY_REFS,
    LineKey,
    Policy,
    PurchaseOrder,
    Reservation,
    Status,
    StockState,
    new_state,
)

__all__ = ["Reads", "StateCache"]


class Reads(NamedTuple):
    """What applying one event may read besides its key's quantities."""

    order: str | None  # the order whose lines at the key it may read or change
    refs: tuple[str, ...]  # the movement references it checks
    pending: bool = False  # whether it may release the key's pending lines (remediation)
    po: str | None = None  # the purchase order whose facts at the key it may change


class StateCache:
    """What this member knows of its keys: stock rows, reservation lines per (key, order),
    movement references, purchase orders per (key, po_id) and processed event ids. `warm`
    fetches what a batch needs and the cache lacks in one round trip; `state_for` hands an
    event its key's state with just the lines, references and purchase order it may read;
    `record` keeps what a decision changed."""

    def __init__(self, policy: Policy, max_entries: int) -> None:
        self.policy = policy
        self.remediates = policy.remediates
        self.max_entries = max_entries
        self.clear()

    def clear(self) -> None:
        """Forget everything cached; also how the cache starts out."""
        self.states: dict[str, StockState] = {}
        self.lines: dict[tuple[str, str], dict[str, Reservation]] = {}
        self.refs: dict[tuple[str, str], int | None] = {}  # None: known not applied
        self.pos: dict[tuple[str, str], PurchaseOrder] = {}  # (key, po_id)
        self.ids: set[str] = set()
        # remediation on: key -> its pending, non-backordered lines (for every cached key)
        self.pending: dict[str, dict[LineKey, Reservation]] = {}

    def size(self) -> int:
        """Entries held, of every kind."""
        return (len(self.states) + len(self.lines) + len(self.refs) + len(self.ids)
                + len(self.pending) + len(self.pos))

    def full(self) -> bool:
        """Whether more entries are held than `max_entries`."""
        return self.size() > self.max_entries

    def warm(self, conn: store.Conn, events: list[Event]) -> list[Reads]:
        """Fetch, in one round trip, whatever `events` need that is not cached; returns
        what each event reads, for `state_for`."""
        if self.remediates:
            reads = [Reads(order_of(e), references_of(e), may_lower_on_hand(e),
                           purchase_order_of(e)) for e in events]
        else:
            reads = [Reads(order_of(e), references_of(e), po=purchase_order_of(e))
                     for e in events]
        keys = {e.key for e in events if e.key not in self.states}
        orders = {(e.key, r.order) for e, r in zip(events, reads, strict=True)
                  if r.order is not None and (e.key, r.order) not in self.lines}
        refs = {(e.key, ref) for e, r in zip(events, reads, strict=True) for ref in r.refs
                if (e.key, ref) not in self.refs}
        pos = {(e.key, r.po) for e, r in zip(events, reads, strict=True)
               if r.po is not None and (e.key, r.po) not in self.pos}
        ids = [e.id for e in events if e.id not in self.ids]
        if not (keys or orders or refs or ids or pos):
            return reads
        # A key not cached has nothing cached at all (its state and its groups come and go
        # together), so what Postgres has committed for it is all there is.
        pending_at = sorted(keys) if self.remediates else []
        got = store.fetch(conn, keys=sorted(keys), orders=sorted(orders), refs=sorted(refs),
                          ids=ids, pending_at=pending_at, purchase_orders=sorted(pos))
        for key in keys:
            sku, _, warehouse = key.partition("@")
            self.states[key] = got.stock.get(key) or new_state(sku, warehouse, self.policy)
        for pair in orders:
            self.lines[pair] = got.lines.get(pair, {})
        if pending_at:
            self._index_pending(pending_at, got.lines)
        for pair in refs:
            self.refs[pair] = got.refs.get(pair)
        for pair in pos:
            self.pos[pair] = got.purchase_orders.get(pair) or PurchaseOrder(pair[1])
        self.ids.update(got.seen)
        return reads

    def _index_pending(self, keys: list[str],
                       fetched: dict[tuple[str, str], dict[str, Reservation]]) -> None:
        """Index the pending lines of newly cached `keys` and cache their order groups."""
        for key in keys:
            self.pending[key] = {}
        new = set(keys)
        for (key, order), group in fetched.items():
            if key in new:
                self.lines.setdefault((key, order), group)
                self.pending[key].update({(order, ln): r for ln, r in group.items()
                                          if r.status is Status.PENDING and not r.backordered})

    def state_for(self, event: Event, reads: Reads) -> StockState:
        """The key's state with just the lines and references `event` may touch."""
        key = event.key
        base = self.states[key]
        own: dict[LineKey, Reservation] | None = None
        if reads.order is not None:
            group = self.lines[(key, reads.order)]
            if group:
                own = {(reads.order, ln): r for ln, r in group.items()}
        readable: Mapping[LineKey, Reservation] | None = own
        if reads.pending and (pending := self.pending[key]):
            # no copy of what may be many lines: the rules read them only to release some
            readable = ChainMap(own, pending) if own else pending
        lines = MappingProxyType(readable) if readable else EMPTY_LINES
        refs = EMPTY_REFS
        if reads.refs:
            found = {r: q for r in reads.refs if (q := self.refs[(key, r)]) is not None}
            if found:
                refs = MappingProxyType(found)
        if reads.po is not None:
            return base.view(lines, refs, self.pos[(key, reads.po)])
        return base.view(lines, refs) if lines or refs else base

    def record(self, event: Event, decision: Decision) -> None:
        """Remember an applied or no-op decision (rejections are not remembered)."""
        self.ids.add(event.id)
        if decision.ledger is None:
            return
        key = event.key
        self.states[key] = decision.state.view(EMPTY_LINES, EMPTY_REFS)  # and no po
        for r in decision.lines:
            self.lines[(key, r.order_id)][r.line_id] = r
        if self.remediates and decision.lines:
            at = self.pending[key]
            for r in decision.lines:
                if r.status is Status.PENDING and not r.backordered:
                    at[(r.order_id, r.line_id)] = r
                else:
                    at.pop((r.order_id, r.line_id), None)
        for ref, q in decision.refs:
            self.refs[(key, ref)] = q
        if decision.po is not None:
            self.pos[(key, decision.po.po_id)] = decision.po
