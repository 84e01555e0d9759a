"""Batch reads and writes of stock state: a few statements per batch, never one per event.

Reads go out in one round trip; bulk rows go in by COPY or by `unnest` over arrays.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from stockflow.adapters.db.batches import Step
from stockflow.adapters.db.literals import ints, nullable, nullable_texts, texts
from stockflow.domain.effects import LedgerEntry
from stockflow.domain.state import (
    PoLine,
    PurchaseOrder,
    Quantities,
    Reservation,
    Severity,
    Status,
    StockState,
)

Conn = psycopg.Connection[tuple[Any, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]  # the HTTP API's

__all__ = ["AlertRow", "AsyncConn", "Conn", "Fetched", "LedgerRow", "LineRow", "ProcessedRow",
           "RefRow", "RejectedRow", "ThresholdRow", "Writes", "connect", "fetch",
           "purchase_order", "rejected_step", "threshold_row"]

def connect(dsn: str, schema: str, *, autocommit: bool = False, **params: Any) -> Conn:
    """A connection whose search path is `schema`; `params` are added libpq parameters
    (timeouts, keepalives: see `Settings.database_options`)."""
    conn = psycopg.connect(dsn, autocommit=autocommit, **params)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    if not autocommit:
        conn.commit()
    return conn


@dataclass
class Fetched:
    """Committed rows for what a batch needs and the cache does not hold."""

    stock: dict[str, StockState]
    lines: dict[tuple[str, str], dict[str, Reservation]]  # (key, order_id) -> line_id -> r
    refs: dict[tuple[str, str], int]
    seen: set[str]
    purchase_orders: dict[tuple[str, str], PurchaseOrder] = field(default_factory=dict)


_LINE = ("r.key, r.order_id, line_id, quantity, remaining, status, expires_at, backordered,"
         " line_count, shipped, placed_version")


def fetch(
    conn: Conn, *, keys: list[str], orders: list[tuple[str, str]],
    refs: list[tuple[str, str]], ids: list[str], pending_at: Sequence[str] = (),
    purchase_orders: Sequence[tuple[str, str]] = (),
) -> Fetched:
    """Stock rows of `keys`, every reservation line of each (key, order_id), the quantity of
    each applied (key, ref), each (key, po_id)'s purchase order, and which of `ids` were
    processed: one round trip. For each key of `pending_at`, every line of each
    order that has a pending, non-backordered line there comes too (what oversell
    remediation may release)."""
    # Only what is wanted goes out: with its keys cached, a batch asks for nothing but
    # its event ids, in one statement without a pipeline (a pipeline's bookkeeping and an
    # empty statement each cost more in Python than the probe itself; measured live).
    wanted: list[tuple[str, tuple[Any, ...]]] = []
    if keys:
        wanted.append((
            "SELECT key, on_hand, reserved, in_transit, damaged, on_order, version,"
            " reorder_point, safety_stock, severity, unit_cost, currency FROM stock"
            " WHERE key = ANY(%s::text[])", (texts(keys),)))
    if orders:
        # One primary-key probe per wanted pair (OFFSET 0 keeps the LATERAL subquery from
        # being flattened into a join). As a join, the planner hashed the whole table until
        # it grew large: a scan per batch growing with the table (measured: 1 ms per batch
        # of 25 at 7,000 rows, against 0.2 ms probing).
        wanted.append((
            f"SELECT {_LINE} FROM unnest(%s::text[], %s::text[]) AS w(key, o),"
            " LATERAL (SELECT * FROM reservations WHERE key = w.key AND order_id = w.o OFFSET 0) r",
            (texts([k for k, _ in orders]), texts([o for _, o in orders]))))
    if pending_at:
        # Whole order groups, as the cache keeps lines per (key, order); the partial index
        # reservations_pending_at_key finds the orders without reading a key's history.
        wanted.append((
            f"SELECT {_LINE} FROM (SELECT DISTINCT key, order_id FROM reservations"
            " WHERE key = ANY(%s::text[]) AND status = 'pending' AND NOT backordered) w,"
            " LATERAL (SELECT * FROM reservations r WHERE r.key = w.key"
            " AND r.order_id = w.order_id OFFSET 0) r", (texts(pending_at),)))
    if refs:
        wanted.append((
            "SELECT m.key, m.ref, quantity FROM unnest(%s::text[], %s::text[]) AS w(key, ref),"
            " LATERAL (SELECT * FROM movement_refs WHERE key = w.key AND ref = w.ref OFFSET 0) m",
            (texts([k for k, _ in refs]), texts([r for _, r in refs]))))
    if ids:
        wanted.append(("SELECT event_id FROM processed_events WHERE event_id = ANY(%s::text[])",
                       (texts(ids),)))
    if purchase_orders:
        wanted.append((
            "SELECT p.key, p.po_id, p.lines, p.unnamed, p.cancelled FROM unnest(%s::text[],"
            " %s::text[]) AS w(key, po), LATERAL (SELECT * FROM purchase_orders"
            " WHERE key = w.key AND po_id = w.po OFFSET 0) p",
            (texts([k for k, _ in purchase_orders]),
             texts([p for _, p in purchase_orders]))))
    results = _read_all(conn, wanted)
    c_stock = results.pop(0) if keys else []
    rows = results.pop(0) if orders else []
    if pending_at:
        rows += results.pop(0)
    c_refs = results.pop(0) if refs else []
    c_seen = results.pop(0) if ids else []
    c_pos = results.pop(0) if purchase_orders else []
    stock = {}
    for k, oh, res, it, dmg, oo, ver, rp, ss, sev, cost, cur in c_stock:
        sku, wh = k.split("@", 1)
        stock[k] = StockState(sku=sku, warehouse=wh, qty=Quantities(oh, res, it, dmg, oo),
                              version=ver,
                              reorder_point=rp, safety_stock=ss, severity=Severity(sev),
                              unit_cost=cost, currency=cur)
    lines: dict[tuple[str, str], dict[str, Reservation]] = defaultdict(dict)
    for k, o, ln, q, rem, st, exp, bo, lc, sh, pv in rows:
        lines[(k, o)][ln] = Reservation(order_id=o, line_id=ln, quantity=q, remaining=rem,
                                        status=Status(st), expires_at=exp, backordered=bo,
                                        line_count=lc, shipped=sh, placed_version=pv)
    found_refs = {(k, ref): q for k, ref, q in c_refs}
    pos = {(k, po): purchase_order(po, js, unnamed, cancelled)
           for k, po, js, unnamed, cancelled in c_pos}
    return Fetched(stock, dict(lines), found_refs, {r[0] for r in c_seen}, pos)


def _read_all(conn: Conn, wanted: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
    """Each statement's rows, in one round trip: a pipeline only when there are several."""
    if len(wanted) == 1:
        return [conn.execute(*wanted[0]).fetchall()]
    with conn.pipeline():
        cursors = [conn.execute(q, params) for q, params in wanted]
    return [c.fetchall() for c in cursors]


def purchase_order(po_id: str, lines: dict[str, Any], unnamed: int,
                   cancelled: bool) -> PurchaseOrder:
    """A `purchase_orders` row as the domain's purchase order (`lines` as stored)."""
    return PurchaseOrder(po_id, MappingProxyType({
        line_id: PoLine(v["ordered"], v["received"], v["cancelled"],
                        datetime.fromisoformat(v["expected_at"]) if v["expected_at"] else None)
        for line_id, v in lines.items()}), unnamed, cancelled)


class AlertRow(NamedTuple):
    """A key whose low-stock alert row changes, and the event that changed it."""

    state: StockState
    cause: str


class LedgerRow(NamedTuple):
    """A ledger entry and the key it was written for."""

    key: str
    entry: LedgerEntry


class LineRow(NamedTuple):
    """A reservation line and the partition of the key it lives at (the sweeper's shard)."""

    line: Reservation
    partition: int


class RefRow(NamedTuple):
    """An applied movement reference and its quantity, so a re-sent one is a no-op."""

    key: str
    ref: str
    quantity: int


class RejectedRow(NamedTuple):
    """An event the rules rejected (or failed on), sent to the DLQ with this reason."""

    event_id: str
    key: str
    reason: str
    message: str


class ProcessedRow(NamedTuple):
    """An event id seen, where it was read, and whether it was applied or a no-op."""

    event_id: str
    key: str
    topic: str
    partition: int
    offset: int
    outcome: str


class ThresholdRow(NamedTuple):
    """An applied `stock.thresholds-set`: the key's version it made, the values it set and
    the ones it replaced (`threshold_history`, migration 0021)."""

    key: str
    version: int
    event_id: str
    set_at: datetime | None  # business time
    reorder_point: int
    safety_stock: int
    previous_reorder_point: int
    previous_safety_stock: int


def threshold_row(before: StockState, after: StockState, event_id: str,
                  at: datetime | None) -> ThresholdRow:
    """The history row of a thresholds change from `before` to `after`."""
    return ThresholdRow(after.key, after.version, event_id, at, after.reorder_point,
                        after.safety_stock, before.reorder_point, before.safety_stock)


@dataclass
class Writes:
    """The stock rows one batch commits (`adapters.db.batches.Rows`)."""

    states: list[StockState] = field(default_factory=list)
    alerts_changed: list[AlertRow] = field(default_factory=list)
    ledger: list[LedgerRow] = field(default_factory=list)
    lines: dict[tuple[str, str, str], LineRow] = field(default_factory=dict)  # key, order, line
    refs: list[RefRow] = field(default_factory=list)
    purchase_orders: dict[tuple[str, str], PurchaseOrder] = field(default_factory=dict)
    processed: list[ProcessedRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    thresholds: list[ThresholdRow] = field(default_factory=list)  # rare: most batches none

    def steps(self) -> list[Step]:
        steps: list[Step] = []
        copied = self.has_statements()  # then its ledger rows and processed ids
        if self.ledger and not copied:
            steps.append(_ledger_step(self.ledger))
        if self.processed and not copied:
            event_id, key, topic, partition, offset, outcome = zip(*self.processed, strict=True)
            steps.append((f"INSERT INTO processed_events ({_PROCESSED}) SELECT * FROM"
                          " unnest(%s::text[], %s::text[], %s::text[], %s::int[],"
                          " %s::bigint[], %s::text[])",
                          [texts(event_id), texts(key), texts(topic), ints(partition),
                           ints(offset), texts(outcome)]))
        if self.states:
            steps.append(_stock_step(self.states))
        if self.lines:
            steps.append(_lines_step(self.lines))
        if self.refs:
            steps.append((
                "INSERT INTO movement_refs (key, ref, quantity) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[])",
                [texts([r.key for r in self.refs]), texts([r.ref for r in self.refs]),
                 ints([r.quantity for r in self.refs])]))
        if self.purchase_orders:
            steps.append(_purchase_orders_step(self.purchase_orders))
        if self.alerts_changed:
            steps += _alert_steps(self.alerts_changed)
        if self.rejected:
            steps.append(rejected_step(self.rejected))
        if self.thresholds:
            steps.append(_thresholds_step(self.thresholds))
        return steps

    def has_statements(self) -> bool:
        # A backlog's batches COPY their ledger rows and processed ids: in a drain, unnest
        # cost Postgres about a third more CPU per event than COPY (measured side by side),
        # while for a small batch COPY's round trips cost more than they save.
        return len(self.processed) >= COPY_FROM

    def statements(self, conn: Conn) -> None:
        cur = conn.cursor()
        if self.ledger:
            # Columns in the order of a LedgerEntry's fields, quantities before and after
            # in Quantities' order, so a row is unpacked whole rather than field by field.
            with cur.copy(f"COPY ledger ({_LEDGER}) FROM STDIN") as copy:
                for key, e in self.ledger:  # a LedgerRow
                    copy.write_row((key, *e[:2], *e[2], *e[3], *e[4:]))
        with cur.copy(f"COPY processed_events ({_PROCESSED}) FROM STDIN") as copy:
            for row in self.processed:
                copy.write_row(row)


COPY_FROM = 1000  # processed events in a batch from which its bulk rows go by COPY
_LEDGER = ("key, event_id, event_type, on_hand_before, reserved_before, in_transit_before,"
           " damaged_before, on_order_before, on_hand_after, reserved_after, in_transit_after,"
           " damaged_after, on_order_after, version, reference, note, actor, event_time,"
           " value, unit_cost, lost, remediated")
_PROCESSED = 'event_id, key, topic, partition, "offset", outcome'


def _ledger_step(rows: list[LedgerRow]) -> Step:
    keys, entries = zip(*rows, strict=True)
    (event_id, event_type, before, after, version, reference, note, actor, time, value,
     unit_cost, lost, remediated) = zip(*entries, strict=True)
    quantities = [ints(column) for q in (before, after) for column in zip(*q, strict=True)]
    return (
        f"INSERT INTO ledger ({_LEDGER}) SELECT * FROM unnest(%s::text[],"
        " %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
        " %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
        " %s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::numeric[],"
        " %s::numeric[], %s::bigint[], %s::bigint[])",
        [texts(keys), texts(event_id), texts(event_type), *quantities, ints(version),
         nullable_texts(reference), nullable_texts(note), nullable_texts(actor),
         nullable(time), nullable(value), nullable(unit_cost), nullable(lost),
         nullable(remediated)])


def rejected_step(rows: list[RejectedRow]) -> Step:
    """Rejected inputs by event id (a second rejection of one id overwrites the first)."""
    latest = list({r.event_id: r for r in rows}.values())  # one id twice: the later
    return (
        "INSERT INTO rejected_events (event_id, key, reason, message) SELECT * FROM"
        " unnest(%s::text[], %s::text[], %s::text[], %s::text[]) ON CONFLICT (event_id)"
        " DO UPDATE SET key = EXCLUDED.key, reason = EXCLUDED.reason,"
        " message = EXCLUDED.message, rejected_at = now()",
        [texts([r.event_id for r in latest]), texts([r.key for r in latest]),
         texts([r.reason for r in latest]), texts([r.message[:1000] for r in latest])])


def _thresholds_step(rows: list[ThresholdRow]) -> Step:
    """The values of the batch's applied thresholds changes, keyed like their ledger rows:
    a replayed batch's events are duplicates and write neither."""
    (key, version, event_id, set_at, reorder_point, safety_stock, previous_reorder_point,
     previous_safety_stock) = zip(*rows, strict=True)
    return (
        "INSERT INTO threshold_history (key, version, event_id, set_at, reorder_point,"
        " safety_stock, previous_reorder_point, previous_safety_stock) SELECT * FROM"
        " unnest(%s::text[], %s::bigint[], %s::text[], %s::timestamptz[], %s::bigint[],"
        " %s::bigint[], %s::bigint[], %s::bigint[])",
        [texts(key), ints(version), texts(event_id), nullable(set_at),
         ints(reorder_point), ints(safety_stock), ints(previous_reorder_point),
         ints(previous_safety_stock)])


def _stock_step(states: list[StockState]) -> Step:
    # one column per field, taken by zip in C rather than a generator per column
    sku, wh, qty, version, rp, ss, severity, cost, currency = list(zip(*states, strict=True))[:9]
    on_hand, reserved, in_transit, damaged, on_order = zip(*qty, strict=True)
    return (
        "INSERT INTO stock (key, sku, warehouse, on_hand, reserved, in_transit, damaged,"
        " on_order, version, reorder_point, safety_stock, severity, unit_cost, currency)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[],"
        " %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
        " %s::bigint[], %s::text[], %s::numeric[], %s::text[]) ON CONFLICT (key) DO UPDATE SET"
        " on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved,"
        " in_transit = EXCLUDED.in_transit, damaged = EXCLUDED.damaged,"
        " on_order = EXCLUDED.on_order,"
        " version = EXCLUDED.version, reorder_point = EXCLUDED.reorder_point,"
        " safety_stock = EXCLUDED.safety_stock, severity = EXCLUDED.severity,"
        " unit_cost = EXCLUDED.unit_cost, currency = EXCLUDED.currency, updated_at = now()",
        [texts([f"{s}@{w}" for s, w in zip(sku, wh, strict=True)]), texts(sku), texts(wh),
         ints(on_hand), ints(reserved), ints(in_transit), ints(damaged), ints(on_order),
         ints(version), ints(rp), ints(ss), texts(severity), nullable(cost),
         nullable(currency)])


def _lines_step(lines: dict[tuple[str, str, str], LineRow]) -> Step:
    rows = lines.values()
    # one column per field of Reservation, taken by zip in C
    (order_id, line_id, quantity, remaining, status, expires_at, backordered, line_count,
     shipped, placed_version) = zip(*[row.line for row in rows], strict=True)
    return (
        "INSERT INTO reservations (key, order_id, line_id, quantity, remaining, status,"
        " expires_at, backordered, line_count, partition, shipped, placed_version) SELECT *"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],"
        " %s::text[], %s::timestamptz[], %s::bool[], %s::int[], %s::int[], %s::bigint[],"
        " %s::bigint[]) ON CONFLICT (key, order_id, line_id) DO UPDATE SET"
        " quantity = EXCLUDED.quantity, remaining = EXCLUDED.remaining,"
        " status = EXCLUDED.status, expires_at = EXCLUDED.expires_at,"
        " backordered = EXCLUDED.backordered, line_count = EXCLUDED.line_count,"
        " shipped = EXCLUDED.shipped, placed_version = EXCLUDED.placed_version,"
        " updated_at = now()",
        [texts([k for k, _, _ in lines]), texts(order_id), texts(line_id), ints(quantity),
         ints(remaining), texts(status), nullable(expires_at), nullable(backordered),
         nullable(line_count), ints([row.partition for row in rows]), ints(shipped),
         ints(placed_version)])


def _purchase_orders_step(pos: dict[tuple[str, str], PurchaseOrder]) -> Step:
    """A few per batch at most (purchase orders are rare beside sales): plain lists."""
    keys, ids, lines, unnamed, cancelled = [], [], [], [], []
    for (key, _), po in pos.items():
        keys.append(key)
        ids.append(po.po_id)
        lines.append(Jsonb({
            line_id: {"ordered": ln.ordered, "received": ln.received, "cancelled": ln.cancelled,
                      "expected_at": ln.expected_at.isoformat() if ln.expected_at else None}
            for line_id, ln in po.lines.items()}))
        unnamed.append(po.unnamed)
        cancelled.append(po.cancelled)
    return (
        "INSERT INTO purchase_orders (key, po_id, lines, unnamed, cancelled)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::bigint[], %s::bool[])"
        " ON CONFLICT (key, po_id) DO UPDATE SET lines = EXCLUDED.lines,"
        " unnamed = EXCLUDED.unnamed, cancelled = EXCLUDED.cancelled, updated_at = now()",
        [keys, ids, lines, unnamed, cancelled])


def _alert_steps(changed: list[AlertRow]) -> list[Step]:
    open_ = [row for row in changed if row.state.severity != "ok"]
    resolved = [row.state.key for row in changed if row.state.severity == "ok"]
    steps: list[Step] = []
    if open_:
        steps.append((
            "INSERT INTO low_stock_alerts (key, severity, available, reorder_point,"
            " cause_event_id) SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[],"
            " %s::bigint[], %s::text[]) ON CONFLICT (key) DO UPDATE SET"
            " severity = EXCLUDED.severity, available = EXCLUDED.available,"
            " reorder_point = EXCLUDED.reorder_point, cause_event_id = EXCLUDED.cause_event_id,"
            " updated_at = now()",
            [texts([r.state.key for r in open_]), texts([r.state.severity for r in open_]),
             ints(r.state.qty.available for r in open_),
             ints(r.state.reorder_point for r in open_), texts([r.cause for r in open_])]))
    if resolved:
        steps.append(("DELETE FROM low_stock_alerts WHERE key = ANY(%s::text[])",
                      [texts(resolved)]))
    return steps
