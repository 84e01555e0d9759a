"""The order coordinator's rows: each order's state (JSON, as `domain.order_state` makes
it), its parts, and the statuses it emitted; and the reads deciding needs, each batch in
one pipelined round trip (`fetch`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from stockflow.adapters.db import store
from stockflow.adapters.db.batches import Step
from stockflow.adapters.db.store import Conn, RejectedRow
from stockflow.domain.order_state import OrderState, PartStatus
from stockflow.domain.orders import expiry

__all__ = ["Fetched", "InFlight", "OrderRows", "StatusRow", "backlog", "due", "dumped",
           "fetch"]

_STATE: TypeAdapter[OrderState] = TypeAdapter(OrderState)


class InFlight(NamedTuple):
    """A part placed and not yet among the processor's reservations."""

    order_id: str
    part_id: str
    key: str
    quantity: int


@dataclass
class Fetched:
    """What the coordinator reads for a batch: order states, sellable units, parts in flight
    and what the processor holds or voided."""

    states: dict[str, OrderState]
    sellable: dict[str, int]  # key -> on_hand - reserved - safety_stock
    in_flight: list[InFlight]
    held: set[tuple[str, str, str]]  # (key, order_id, part_id) of cached parts the processor holds
    # (order_id, part_id) of those cached parts whose line the processor had recorded as
    # released before the placement, which was a no-op: no verdict will come for them
    voided: set[tuple[str, str]]


def fetch(conn: Conn, *, orders: Sequence[str], keys: Sequence[str],
          cached_parts: Sequence[tuple[str, str, str]]) -> Fetched:
    """The states of `orders`, the sellable units at `keys`, the parts in flight there (as
    committed: the caller puts what it knows better in their place), and which
    `cached_parts` the processor already holds (its reservation exists, in any status)."""
    with conn.pipeline():
        c_states = conn.execute("SELECT state FROM orders WHERE order_id = ANY(%s::text[])",
                                (list(orders),))
        c_stock = conn.execute(
            "SELECT key, on_hand - reserved - safety_stock FROM stock"
            " WHERE key = ANY(%s::text[])", (list(keys),))
        c_flight = conn.execute(
            "SELECT p.order_id, p.part_id, p.sku || '@' || p.warehouse, p.quantity"
            " FROM order_parts p WHERE p.status = 'placed'"
            " AND p.sku || '@' || p.warehouse = ANY(%s::text[])"
            " AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.key = p.sku || '@' ||"
            " p.warehouse AND r.order_id = p.order_id AND r.line_id = p.part_id)",
            (list(keys),))
        c_held = conn.execute(
            "SELECT r.key, r.order_id, r.line_id, " + _VOID + " FROM unnest(%s::text[],"
            " %s::text[], %s::text[]) AS w(key, o, l), LATERAL (SELECT * FROM reservations"
            " WHERE key = w.key AND order_id = w.o AND line_id = w.l OFFSET 0) r",
            ([k for k, _, _ in cached_parts], [o for _, o, _ in cached_parts],
             [p for _, _, p in cached_parts]))
    held = c_held.fetchall()
    return Fetched(
        states={s.order_id: s for s in (_STATE.validate_python(r[0])
                                        for r in c_states.fetchall())},
        sellable={k: int(n) for k, n in c_stock.fetchall()},
        in_flight=[InFlight(o, p, k, int(q)) for o, p, k, q in c_flight.fetchall()],
        held={(k, o, p) for k, o, p, _ in held},
        voided={(o, p) for _, o, p, void in held if void})


# A line the processor recorded as released before any placement (a tombstone): what a
# cancel naming a line it did not know leaves, making a later order.placed a no-op.
_VOID = "(r.quantity = 0 AND r.status = 'released')"


def due(conn: Conn, partitions: list[int], now: datetime, limit: int) -> list[tuple[str, str]]:
    """Orders in `partitions` the sweeper should nudge with order.expired, each with what
    makes the nudge's id: those whose deadline has passed (the deadline), and those with a
    placed part the processor will never judge (`voided` in `fetch`; the part)."""
    rows = conn.execute(
        "(SELECT order_id, expires_at, NULL FROM orders WHERE partition = ANY(%s)"
        " AND expires_at IS NOT NULL AND expires_at <= %s ORDER BY expires_at LIMIT %s)"
        " UNION ALL (SELECT o.order_id, NULL, p.part_id FROM order_parts p"
        " JOIN orders o USING (order_id) JOIN reservations r ON r.key = p.sku || '@' ||"
        " p.warehouse AND r.order_id = p.order_id AND r.line_id = p.part_id"
        " WHERE p.status = 'placed' AND o.partition = ANY(%s) AND " + _VOID + " LIMIT %s)",
        (partitions, now, limit, partitions, limit)).fetchall()
    return [(o, at.isoformat() if at is not None else f"voided {part}") for o, at, part in rows]


def backlog(conn: Conn) -> tuple[int, float]:
    """Orders not ended, and the age in seconds of the oldest waiting on the processor
    (allocating, confirming or releasing) since its last change."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE phase IN ('allocating', 'allocated', 'confirming',"
        " 'releasing')), coalesce(extract(epoch FROM now() - min(updated_at) FILTER (WHERE"
        " phase IN ('allocating', 'confirming', 'releasing'))), 0) FROM orders").fetchone()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


class StatusRow(NamedTuple):
    """An order status event the coordinator emitted, recorded as the order's history."""

    event_id: str
    order_id: str
    type: str
    data: str  # JSON
    cause: str


@dataclass
class OrderRows:
    """What one batch of the coordinator commits (`adapters.db.batches.Rows`): the orders
    it changed, each with the partition it was read from, and the statuses it emitted."""

    states: dict[str, tuple[OrderState, int]] = field(default_factory=dict)
    statuses: list[StatusRow] = field(default_factory=list)
    # requests it dead-lettered, as the processor keeps its own: what ?wait answers with
    rejected: list[RejectedRow] = field(default_factory=list)

    def steps(self) -> list[Step]:
        steps: list[Step] = []
        if self.statuses:
            steps.append((
                "INSERT INTO order_statuses (event_id, order_id, type, data, cause)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[],"
                " %s::text[]) ON CONFLICT (event_id) DO NOTHING",
                [[r.event_id for r in self.statuses], [r.order_id for r in self.statuses],
                 [r.type for r in self.statuses], [r.data for r in self.statuses],
                 [r.cause for r in self.statuses]]))
        if self.rejected:
            steps.append(store.rejected_step(self.rejected))
        return steps

    def has_statements(self) -> bool:
        return bool(self.states)

    def statements(self, conn: Conn) -> None:
        # An order's parts are replaced (deleted, then inserted): one row written twice,
        # which steps of one statement cannot do.
        _upsert_orders(conn, self.states.values())
        _replace_parts(conn, [s for s, _ in self.states.values()])


def _upsert_orders(conn: Conn, rows: Iterable[tuple[OrderState, int]]) -> None:
    ids, phases, parts, due_at, states = [], [], [], [], []
    for state, partition in rows:
        ids.append(state.order_id)
        phases.append(state.phase.value)
        parts.append(partition)
        due_at.append(expiry(state))
        states.append(_STATE.dump_json(state).decode())
    conn.execute(
        "INSERT INTO orders (order_id, phase, partition, expires_at, state) SELECT * FROM"
        " unnest(%s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::jsonb[])"
        " ON CONFLICT (order_id) DO UPDATE SET phase = EXCLUDED.phase,"
        " expires_at = EXCLUDED.expires_at, state = EXCLUDED.state, updated_at = now()",
        (ids, phases, parts, due_at, states))


def _replace_parts(conn: Conn, states: list[OrderState]) -> None:
    conn.execute("DELETE FROM order_parts WHERE order_id = ANY(%s::text[])",
                 ([s.order_id for s in states],))
    parts = [(s.order_id, p) for s in states for p in s.parts]
    if parts:
        conn.execute(
            "INSERT INTO order_parts (order_id, part_id, sku, warehouse, quantity, status)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::bigint[], %s::text[])",
            ([o for o, _ in parts], [p.id for _, p in parts], [p.sku for _, p in parts],
             [p.warehouse for _, p in parts], [p.quantity for _, p in parts],
             [PartStatus(p.status).value for _, p in parts]))


def dumped(data: Any) -> str:
    """A status's data as the JSON its row keeps."""
    return json.dumps(data, separators=(",", ":"), default=str)
