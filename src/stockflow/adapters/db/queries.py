"""Read-side queries: the CLI's stock lookup, the live view and the closing summary, the
sweeper's due reservations and the processor's gauges. The batch path is in `store`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stockflow.adapters.db.store import Conn
from stockflow.contract.topics import TP

__all__ = ["COMMITTED", "committed_positions", "due_reservations", "most_critical", "open_alerts",
           "stock_of", "totals"]

_STOCK_FIELDS = ("sku", "warehouse", "on_hand", "reserved", "available", "in_transit",
                 "damaged", "on_order", "version", "reorder_point", "safety_stock", "severity",
                 "updated_at")


def stock_of(conn: Conn, key: str) -> dict[str, Any] | None:
    """A key's stock row and its count of active reservations, or None."""
    row = conn.execute(f"SELECT {', '.join(_STOCK_FIELDS)} FROM stock WHERE key = %s",
                       (key,)).fetchone()
    if row is None:
        return None
    active = conn.execute("SELECT count(*) FROM reservations WHERE key = %s AND status IN"
                          " ('pending', 'confirmed')", (key,)).fetchone()
    return {**dict(zip(_STOCK_FIELDS, row, strict=True)),
            "active_reservations": active[0] if active else 0}


def most_critical(conn: Conn, limit: int) -> list[tuple[str, int, str]]:
    """(key, available, severity) of the keys lowest on stock."""
    rows = conn.execute("SELECT key, available, severity FROM stock WHERE severity <> 'ok'"
                        " ORDER BY available, key LIMIT %s", (limit,)).fetchall()
    return [(str(k), int(a), str(s)) for k, a, s in rows]


def totals(conn: Conn) -> dict[str, Any]:
    """Processed events by outcome, keys and their summed stock, open alerts by severity."""
    outcomes = {str(o): int(n) for o, n in conn.execute(
        "SELECT outcome, count(*) FROM processed_events GROUP BY outcome").fetchall()}
    keys, on_hand, reserved = conn.execute(
        "SELECT count(*), coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0) FROM stock"
    ).fetchone() or (0, 0, 0)
    return {"outcomes": outcomes, "keys": int(keys), "on_hand": int(on_hand),
            "reserved": int(reserved), "alerts": open_alerts(conn)}


def open_alerts(conn: Conn) -> dict[str, int]:
    """Open low-stock alerts by severity."""
    rows = conn.execute("SELECT severity, count(*) FROM low_stock_alerts GROUP BY severity")
    return {str(s): int(n) for s, n in rows.fetchall()}


COMMITTED = ("SELECT topic, partition, next_offset FROM consumer_offsets"
             " WHERE group_id = %s")  # a group's positions, which Postgres owns


def committed_positions(conn: Conn, group: str) -> dict[TP, int]:
    """Every committed next offset of `group`."""
    return {(str(t), int(p)): int(n) for t, p, n in conn.execute(COMMITTED, (group,))}


def due_reservations(conn: Conn, partitions: list[int], now: datetime,
                     limit: int) -> list[tuple[str, str, str, datetime]]:
    """(key, order_id, line_id, expires_at) of pending lines past expiry, soonest first."""
    rows = conn.execute(
        "SELECT key, order_id, line_id, expires_at FROM reservations"
        " WHERE status = 'pending' AND partition = ANY(%s) AND expires_at <= %s"
        " ORDER BY expires_at LIMIT %s", (partitions, now, limit)).fetchall()
    return [(str(k), str(o), str(ln), e) for k, o, ln, e in rows]
