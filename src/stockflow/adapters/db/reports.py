"""Reports computed in Postgres, set-based: stock by warehouse, the low and out-of-stock
keys, and movements by type and warehouse over a period of business time (a movement's
cause event's own time; its recording time for rows written before migration 0007).
Each report is one query, for the command line (`run`) and the HTTP API (`run_async`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["REPORTS", "Filters", "Query", "query", "run", "run_async"]


class Filters(NamedTuple):
    warehouse: str | None = None
    since: datetime | None = None  # movements at or after
    until: datetime | None = None  # movements before
    low_only: bool = False  # stock: the low and out-of-stock keys instead of totals


class Query(NamedTuple):
    columns: tuple[str, ...]
    sql: str
    params: dict[str, Any]


_WAREHOUSE = "(%(warehouse)s::text IS NULL OR warehouse = %(warehouse)s)"
_STOCK = (
    "SELECT warehouse, count(*), sum(on_hand), sum(reserved), sum(available),"
    " sum(in_transit), sum(damaged), count(*) FILTER (WHERE severity = 'low'),"
    " count(*) FILTER (WHERE severity = 'out_of_stock') FROM stock"
    f" WHERE {_WAREHOUSE} GROUP BY warehouse ORDER BY warehouse")
_LOW = (
    "SELECT key, warehouse, severity, available, reorder_point, safety_stock, on_hand,"
    f" reserved FROM stock WHERE severity <> 'ok' AND {_WAREHOUSE}"
    " ORDER BY severity = 'out_of_stock' DESC, available, key")
_MOVEMENTS = (
    "SELECT split_part(key, '@', 2) AS warehouse, event_type, count(*),"
    " coalesce(sum(on_hand_delta) FILTER (WHERE on_hand_delta > 0), 0),"
    " coalesce(-sum(on_hand_delta) FILTER (WHERE on_hand_delta < 0), 0), sum(on_hand_delta)"
    " FROM ledger WHERE (%(warehouse)s::text IS NULL OR split_part(key, '@', 2) = %(warehouse)s)"
    " AND (%(since)s::timestamptz IS NULL OR coalesce(event_time, recorded_at) >= %(since)s)"
    " AND (%(until)s::timestamptz IS NULL OR coalesce(event_time, recorded_at) < %(until)s)"
    " GROUP BY 1, 2 ORDER BY 1, 2")

REPORTS = ("stock", "movements")
_COLUMNS = {
    "stock": ("warehouse", "keys", "on_hand", "reserved", "available", "in_transit",
              "damaged", "low", "out_of_stock"),
    "low": ("key", "warehouse", "severity", "available", "reorder_point", "safety_stock",
            "on_hand", "reserved"),
    "movements": ("warehouse", "event_type", "movements", "units_in", "units_out",
                  "net_units"),
}


def query(report: str, filters: Filters) -> Query:
    """The query of `report` (one of REPORTS) under `filters`."""
    if report not in REPORTS:
        raise ValueError(f"report: one of {', '.join(REPORTS)}; got {report!r}")
    name = "low" if report == "stock" and filters.low_only else report
    text = {"stock": _STOCK, "low": _LOW, "movements": _MOVEMENTS}[name]
    params = {"warehouse": filters.warehouse, "since": filters.since, "until": filters.until}
    return Query(_COLUMNS[name], text, params)


def _rows(q: Query, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    # sums of bigint come back as numeric: units are whole, so as ints
    return [dict(zip(q.columns, (int(v) if isinstance(v, Decimal) else v for v in row),
                     strict=True)) for row in rows]


def run(conn: Conn, report: str, filters: Filters) -> list[dict[str, Any]]:
    q = query(report, filters)
    return _rows(q, conn.execute(q.sql, q.params).fetchall())


async def run_async(conn: AsyncConn, report: str, filters: Filters) -> list[dict[str, Any]]:
    q = query(report, filters)
    return _rows(q, await (await conn.execute(q.sql, q.params)).fetchall())
