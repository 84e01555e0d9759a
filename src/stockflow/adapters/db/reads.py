"""The HTTP API's reads (asynchronous, one pooled connection each). Lists page by keyset:
the cursor is the last row's unique sort key, so pages never skip or repeat a row that
existed when the first page was read, whatever is written meanwhile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stockflow.adapters.db import store
from stockflow.adapters.db.queries import COMMITTED
from stockflow.adapters.db.store import AsyncConn

__all__ = ["STOCK_FIELDS", "alerts", "committed", "event_outcomes", "ledger", "ledger_newest",
           "open_orders", "order_lines", "oversold", "purchase_order", "recent_orders", "sku",
           "stock", "stock_at", "stock_page"]

STOCK_FIELDS = ("key", "sku", "warehouse", "on_hand", "reserved", "available", "in_transit",
                "damaged", "on_order", "version", "reorder_point", "safety_stock", "severity",
                "unit_cost", "currency", "updated_at")
_STOCK = f"SELECT {', '.join(STOCK_FIELDS)} FROM stock"
_LEDGER_FIELDS = ("version", "event_id", "event_type", "reference", "note", "on_hand_before",
                  "on_hand_after", "reserved_before", "reserved_after", "in_transit_before",
                  "in_transit_after", "damaged_before", "damaged_after", "on_order_before",
                  "on_order_after", "actor", "event_time",
                  "recorded_at", "value", "unit_cost", "lost")
# When a movement happened in business time: its cause's own time; for rows from before
# migration 0007, which kept none, when it was recorded.
BUSINESS_TIME = "coalesce(event_time, recorded_at)"
_LINE_FIELDS = ("key", "line_id", "quantity", "remaining", "status", "expires_at",
                "backordered", "updated_at")


async def _rows(conn: AsyncConn, query: str, params: tuple[Any, ...],
                fields: tuple[str, ...]) -> list[dict[str, Any]]:
    cur = await conn.execute(query, params)
    return [dict(zip(fields, row, strict=True)) for row in await cur.fetchall()]


async def stock(conn: AsyncConn, key: str) -> dict[str, Any] | None:
    """One key's stock as the API answers it, or None when the key has none recorded."""
    rows = await _rows(conn, f"{_STOCK} WHERE key = %s", (key,), STOCK_FIELDS)
    return rows[0] if rows else None


async def stock_page(conn: AsyncConn, *, sku: str | None, warehouse: str | None,
                     severity: str | None, after: str | None, limit: int,
                     sku_prefix: str | None = None) -> list[dict[str, Any]]:
    """Keys in key order after `after`, filtered (a key begins with its SKU, so a SKU
    prefix is a key prefix: the scan starts there); `limit` rows at most."""
    return await _rows(
        conn, f"{_STOCK} WHERE (%s::text IS NULL OR sku = %s)"
        " AND (%s::text IS NULL OR warehouse = %s) AND (%s::text IS NULL OR severity = %s)"
        " AND (%s::text IS NULL OR key > %s)"
        " AND (%s::text IS NULL OR (key >= %s AND starts_with(key, %s))) ORDER BY key LIMIT %s",
        (sku, sku, warehouse, warehouse, severity, severity, after, after, sku_prefix,
         sku_prefix, sku_prefix, limit), STOCK_FIELDS)


async def sku(conn: AsyncConn, sku_: str) -> list[dict[str, Any]]:
    """The SKU's stock in every warehouse that has it."""
    return await _rows(conn, f"{_STOCK} WHERE sku = %s ORDER BY warehouse", (sku_,),
                       STOCK_FIELDS)


async def ledger(conn: AsyncConn, key: str, *, since: datetime | None,
                 until: datetime | None, after: int | None,
                 limit: int) -> list[dict[str, Any]]:
    """The key's movements in version order after version `after`, that happened (in
    business time) in [since, until)."""
    return await _rows(
        conn, f"SELECT {', '.join(_LEDGER_FIELDS)} FROM ledger WHERE key = %s"
        f" AND version > %s AND (%s::timestamptz IS NULL OR {BUSINESS_TIME} >= %s)"
        f" AND (%s::timestamptz IS NULL OR {BUSINESS_TIME} < %s) ORDER BY version LIMIT %s",
        (key, after or 0, since, since, until, until, limit), _LEDGER_FIELDS)


async def ledger_newest(conn: AsyncConn, key: str, limit: int) -> list[dict[str, Any]]:
    """The key's `limit` newest movements, newest first."""
    return await _rows(conn, f"SELECT {', '.join(_LEDGER_FIELDS)} FROM ledger WHERE key = %s"
                             " ORDER BY version DESC LIMIT %s", (key, limit), _LEDGER_FIELDS)


async def stock_at(conn: AsyncConn, key: str, at: datetime) -> dict[str, Any] | None:
    """The key's quantities and average unit cost as of `at` in business time: after the
    last movement applied among those that had happened by then (the ledger is
    append-only and holds every applied event). None when the key had none then."""
    rows = await _rows(
        conn, "SELECT version, on_hand_after, reserved_after, in_transit_after,"
        " damaged_after, on_order_after, unit_cost, event_time, recorded_at FROM ledger"
        f" WHERE key = %s AND {BUSINESS_TIME} <= %s ORDER BY version DESC LIMIT 1", (key, at),
        ("version", "on_hand", "reserved", "in_transit", "damaged", "on_order", "unit_cost",
         "event_time", "recorded_at"))
    return rows[0] if rows else None


async def purchase_order(conn: AsyncConn, po_id: str) -> list[dict[str, Any]]:
    """A purchase order at every key it is recorded at, by key: each key's lines as
    placed, received and cancelled, with what each still has open."""
    cur = await conn.execute("SELECT key, lines, unnamed, cancelled, updated_at"
                             " FROM purchase_orders WHERE po_id = %s ORDER BY key", (po_id,))
    found = []
    for key, lines, unnamed, cancelled, updated_at in await cur.fetchall():
        po = store.purchase_order(po_id, lines, unnamed, cancelled)
        opened = po.open_lines()
        sku, warehouse = key.split("@", 1)
        found.append({
            "key": key, "sku": sku, "warehouse": warehouse, "cancelled": cancelled,
            "received_unnamed": unnamed, "on_order": sum(opened.values()),
            "updated_at": updated_at,
            "lines": [{"line_id": line_id or None, "ordered": line.ordered,
                       "received": line.received, "cancelled": line.cancelled,
                       "expected_at": line.expected_at, "open": opened.get(line_id, 0)}
                      for line_id, line in sorted(po.lines.items())]})
    return found


async def order_lines(conn: AsyncConn, order_id: str) -> list[dict[str, Any]]:
    """An order's reservation lines across keys, by line id."""
    return await _rows(conn, f"SELECT {', '.join(_LINE_FIELDS)} FROM reservations"
                             " WHERE order_id = %s ORDER BY line_id, key", (order_id,),
                       _LINE_FIELDS)


async def event_outcomes(conn: AsyncConn, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """What the processor made of these events so far: event id -> (`applied` | `noop` |
    `rejected`, the rejection's reason). An event rejected once and applied after a
    re-send counts as applied."""
    cur = await conn.execute(
        "SELECT event_id, outcome, NULL FROM processed_events WHERE event_id = ANY(%s)"
        " UNION ALL SELECT event_id, 'rejected', reason || ': ' || message"
        " FROM rejected_events WHERE event_id = ANY(%s)", (ids, ids))
    done: dict[str, tuple[str, str | None]] = {}
    for ident, outcome, reason in sorted(await cur.fetchall(),
                                         key=lambda row: row[1] == "rejected"):
        done.setdefault(str(ident), (str(outcome), reason))  # processed rows come first
    return done


async def order_answers(conn: AsyncConn, requests: dict[str, str],
                        ) -> dict[str, tuple[str, dict[str, Any] | None, str | None]]:
    """What the coordinator answered so far to orders requested by these events (order id
    -> request event id): order id -> (first status type, its data, None), or, when the
    request was dead-lettered, ("rejected", None, reason: message)."""
    orders, ids = list(requests), list(requests.values())
    cur = await conn.execute(
        "SELECT DISTINCT ON (order_id) order_id, type, data, NULL FROM order_statuses"
        " WHERE order_id = ANY(%s) ORDER BY order_id, seq", (orders,))
    found: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {
        str(o): (str(t), d, None) for o, t, d, _ in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT key, reason || ': ' || message FROM rejected_events WHERE event_id = ANY(%s)",
        (ids,))
    for order_id, reason in await cur.fetchall():
        found.setdefault(str(order_id), ("rejected", None, str(reason)))
    return found


async def order_fingerprint(conn: AsyncConn, order_id: str) -> str | None:
    """The fingerprint of the request the coordinator knows the order by, if any."""
    cur = await conn.execute("SELECT state->>'fingerprint' FROM orders WHERE order_id = %s",
                             (order_id,))
    row = await cur.fetchone()
    return str(row[0]) if row and row[0] is not None else None


async def order(conn: AsyncConn, order_id: str) -> dict[str, Any] | None:
    """The coordinator's view of an order: its phase, parts and every status, or None."""
    cur = await conn.execute("SELECT phase, state, created_at, updated_at FROM orders"
                             " WHERE order_id = %s", (order_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    phase, state, created, updated = row
    cur = await conn.execute("SELECT type, data, at FROM order_statuses WHERE order_id = %s"
                             " ORDER BY seq", (order_id,))
    history = [{"type": t, "data": d, "at": at} for t, d, at in await cur.fetchall()]
    parts = [{"line_id": f"{p['line_id']}~{p['k']}", "sku": p["sku"],
              "warehouse": p["warehouse"], "quantity": p["quantity"], "status": p["status"]}
             for p in state["parts"]]
    return {"phase": phase, "parts": parts, "history": history, "created_at": created,
            "updated_at": updated}


async def recent_orders(conn: AsyncConn, limit: int) -> list[dict[str, Any]]:
    """The newest orders handed over whole: each with its phase, its parts' count and
    when it last changed."""
    return await _rows(
        conn, "SELECT order_id, phase, jsonb_array_length(state->'parts'), created_at,"
        " updated_at FROM orders ORDER BY created_at DESC LIMIT %s", (limit,),
        ("order_id", "phase", "parts", "created_at", "updated_at"))


async def oversold(conn: AsyncConn, limit: int) -> list[dict[str, Any]]:
    """Keys with more reserved than on hand now (available below 0), the latest first."""
    return await _rows(
        conn, "SELECT key, on_hand, reserved, available, updated_at FROM stock"
        " WHERE available < 0 ORDER BY updated_at DESC LIMIT %s", (limit,),
        ("key", "on_hand", "reserved", "available", "updated_at"))


async def open_orders(conn: AsyncConn) -> dict[str, int]:
    """Whole orders not finished yet (neither confirmed, rejected nor cancelled), by phase."""
    cur = await conn.execute("SELECT phase, count(*) FROM orders WHERE phase NOT IN"
                             " ('confirmed', 'rejected', 'cancelled') GROUP BY phase"
                             " ORDER BY phase")
    return {str(phase): int(n) for phase, n in await cur.fetchall()}


async def committed(conn: AsyncConn, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed next offsets, which Postgres owns."""
    cur = await conn.execute(COMMITTED, (group,))
    return {(str(t), int(p)): int(n) for t, p, n in await cur.fetchall()}


async def alerts(conn: AsyncConn, *, warehouse: str | None,
                 limit: int) -> list[dict[str, Any]]:
    """Open low-stock alerts, out of stock first, then the least available."""
    return await _rows(
        conn, "SELECT a.key, s.sku, s.warehouse, a.severity, a.available, a.reorder_point,"
        " a.updated_at FROM low_stock_alerts a JOIN stock s USING (key)"
        " WHERE (%s::text IS NULL OR s.warehouse = %s)"
        " ORDER BY a.severity = 'out_of_stock' DESC, a.available, a.key LIMIT %s",
        (warehouse, warehouse, limit),
        ("key", "sku", "warehouse", "severity", "available", "reorder_point", "updated_at"))
