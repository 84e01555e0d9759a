"""Reports computed in Postgres, set-based: stock by warehouse, the low and out-of-stock
keys, movements by type and warehouse over a period of business time (see
`reads.BUSINESS_TIME`), and valuation (on-hand units times each key's average unit cost,
totalled per warehouse and currency), now or as of a past instant. Each report is one
query, for the command line (`run`) and the HTTP API (`run_async`); a filter not given
adds no condition, so the planner sees only the ones that are (and can use the ledger's
time index). The movements chart also reads, over the same period, the demand turned away
(`lost_demand`) and the net value per currency (`net_value_by_currency`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from stockflow.adapters.db.reads import BUSINESS_TIME
from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["REPORTS", "Filters", "Query", "lost_demand", "net_value_by_currency", "query", "run",
           "run_async"]


class Filters(NamedTuple):
    """What a report is narrowed to: a warehouse, a time span, the low keys only."""

    warehouse: str | None = None
    since: datetime | None = None  # movements at or after
    until: datetime | None = None  # movements before; valuation as of (just before) then
    low_only: bool = False  # stock: the low and out-of-stock keys instead of totals


class Query(NamedTuple):
    """A report's SQL, its named parameters and the columns of its rows."""

    columns: tuple[str, ...]
    sql: str
    params: dict[str, Any]


REPORTS = ("stock", "movements", "valuation")
_COLUMNS = {
    "stock": ("warehouse", "keys", "on_hand", "reserved", "available", "in_transit",
              "damaged", "low", "out_of_stock"),
    "low": ("key", "warehouse", "severity", "available", "reorder_point", "safety_stock",
            "on_hand", "reserved"),
    "movements": ("warehouse", "event_type", "movements", "units_in", "units_out",
                  "net_units", "value_in", "value_out", "net_value"),
    "valuation": ("warehouse", "currency", "keys", "on_hand", "value", "average_unit_cost"),
}


def _where(*conditions: str | None) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


def _stock(f: Filters) -> str:
    return ("SELECT warehouse, count(*), sum(on_hand), sum(reserved), sum(available),"
            " sum(in_transit), sum(damaged), count(*) FILTER (WHERE severity = 'low'),"
            " count(*) FILTER (WHERE severity = 'out_of_stock') FROM stock"
            + _where("warehouse = %(warehouse)s" if f.warehouse else None)
            + " GROUP BY warehouse ORDER BY warehouse")


def _low(f: Filters) -> str:
    return ("SELECT key, warehouse, severity, available, reorder_point, safety_stock, on_hand,"
            " reserved FROM stock"
            + _where("severity <> 'ok'", "warehouse = %(warehouse)s" if f.warehouse else None)
            + " ORDER BY severity = 'out_of_stock' DESC, available, key")


def _period(f: Filters) -> list[str | None]:
    """The conditions on ledger rows of the movements report's warehouse and period."""
    return ["split_part(key, '@', 2) = %(warehouse)s" if f.warehouse else None,
            f"{BUSINESS_TIME} >= %(since)s" if f.since else None,
            f"{BUSINESS_TIME} < %(until)s" if f.until else None]


def _movements(f: Filters) -> str:
    return (
        "SELECT split_part(key, '@', 2) AS warehouse, event_type, count(*),"
        " coalesce(sum(on_hand_delta) FILTER (WHERE on_hand_delta > 0), 0),"
        " coalesce(-sum(on_hand_delta) FILTER (WHERE on_hand_delta < 0), 0),"
        " sum(on_hand_delta), sum(value) FILTER (WHERE value > 0),"
        " -sum(value) FILTER (WHERE value < 0), sum(value) FROM ledger"
        + _where(*_period(f)) + " GROUP BY 1, 2 ORDER BY 1, 2")


def _valuation(f: Filters) -> str:
    # Now: the stock rows. As of a past instant: each key's last movement applied among
    # those that had happened before then (a backward walk of the key's ledger, newest
    # first), on hand after it times the average then. A key is valued in one currency
    # from its first costed receipt on, so its currency is the stock row's.
    if f.until is None:
        held = ("SELECT warehouse, currency, on_hand, unit_cost FROM stock"
                + _where("warehouse = %(warehouse)s" if f.warehouse else None))
    else:
        held = (
            "SELECT s.warehouse, CASE WHEN l.unit_cost IS NOT NULL THEN s.currency END,"
            " l.on_hand_after, l.unit_cost FROM stock s CROSS JOIN LATERAL ("
            "SELECT on_hand_after, unit_cost FROM ledger WHERE key = s.key"
            f" AND {BUSINESS_TIME} < %(until)s ORDER BY version DESC LIMIT 1) l"
            + _where("s.warehouse = %(warehouse)s" if f.warehouse else None))
    return (
        "SELECT warehouse, currency, count(*), sum(on_hand), sum(on_hand * unit_cost),"
        " round(sum(on_hand * unit_cost) / nullif(sum(on_hand), 0), 6)"
        f" FROM ({held}) AS h(warehouse, currency, on_hand, unit_cost)"
        " GROUP BY warehouse, currency ORDER BY warehouse, currency NULLS LAST")


def query(report: str, filters: Filters) -> Query:
    """The query of `report` (one of REPORTS) under `filters`."""
    if report not in REPORTS:
        raise ValueError(f"report: one of {', '.join(REPORTS)}; got {report!r}")
    name = "low" if report == "stock" and filters.low_only else report
    build = {"stock": _stock, "low": _low, "movements": _movements, "valuation": _valuation}
    params = {"warehouse": filters.warehouse, "since": filters.since, "until": filters.until}
    return Query(_COLUMNS[name], build[name](filters), params)


def _value(v: Any) -> Any:
    # sums of bigint come back as numeric: units are whole, so as ints; money stays Decimal
    if isinstance(v, Decimal) and v.as_tuple().exponent == 0:
        return int(v)
    return v


def _rows(q: Query, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(q.columns, map(_value, row), strict=True)) for row in rows]


def run(conn: Conn, report: str, filters: Filters) -> list[dict[str, Any]]:
    """The report's rows, as dicts of its columns."""
    q = query(report, filters)
    return _rows(q, conn.execute(q.sql, q.params).fetchall())


def lost_demand(conn: Conn, filters: Filters) -> dict[str, int]:
    """Units of demand turned away (rejected reservations) per warehouse, over the
    movements report's warehouse and period; warehouses without any are absent."""
    rows = conn.execute(
        "SELECT split_part(key, '@', 2), sum(lost) FROM ledger"
        + _where(*_period(filters), "lost IS NOT NULL") + " GROUP BY 1 ORDER BY 1",
        query("movements", filters).params).fetchall()
    return {str(w): int(units) for w, units in rows}


def net_value_by_currency(conn: Conn, filters: Filters) -> dict[tuple[str, str], Decimal]:
    """The movements report's net value at cost per warehouse and currency, so that values
    in different currencies are not added together. A key is valued in one currency from
    its first costed receipt on (its stock row's); its movements before that have none."""
    rows = conn.execute(
        "SELECT split_part(key, '@', 2), s.currency, sum(l.value) FROM (SELECT key, value"
        " FROM ledger" + _where(*_period(filters), "value IS NOT NULL") + ") AS l"
        " JOIN stock AS s USING (key) GROUP BY 1, 2 ORDER BY 1, 2",
        query("movements", filters).params).fetchall()
    return {(str(w), str(c)): Decimal(v) for w, c, v in rows}


async def run_async(conn: AsyncConn, report: str, filters: Filters) -> list[dict[str, Any]]:
    """`run` on the HTTP API's asynchronous connection."""
    q = query(report, filters)
    return _rows(q, await (await conn.execute(q.sql, q.params)).fetchall())
