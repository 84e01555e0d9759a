"""What forecasts and reorder suggestions read from Postgres: daily demand per key from
the ledger, a key's stock day by day and its thresholds over time (for its chart), the
keys' stock positions, and the lead times and service-level targets set per warehouse or
key.

Days are UTC days of business time (`reads.BUSINESS_TIME`). A day's demand is what was
shipped (`shipment.dispatched`'s units off the shelf) and, apart, what was turned away
(`lost`: the units of rejected reservations). Each key's days come back from Postgres as
arrays, one row per key, so a year of 10,000 keys is 10,000 rows, not millions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from stockflow.adapters.db.reads import BUSINESS_TIME
from stockflow.adapters.db.store import Conn

__all__ = ["Demand", "Position", "StockDays", "ThresholdChange", "clear_lead_time",
           "clear_service_level", "daily_demand", "known_values", "lead_times", "positions",
           "service_levels", "set_lead_time", "set_service_level", "stock_by_day",
           "threshold_changes"]

Days = npt.NDArray[np.float64]


class Demand(NamedTuple):
    """A key's daily demand, oldest day first: units shipped, and units turned away."""

    shipped: Days  # units a day, oldest first
    lost: Days


class Position(NamedTuple):
    """A key's stock and thresholds now, as a reorder suggestion starts from them."""

    on_hand: int
    available: int
    in_transit: int
    on_order: int  # ordered from suppliers, not yet received
    reorder_point: int
    safety_stock: int
    version: int = 0  # the key's version when read: its changes since count from it


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _scope(key: str | None, warehouse: str | None) -> str:
    return "".join((" AND key = %(key)s" if key else "",
                    " AND split_part(key, '@', 2) = %(warehouse)s" if warehouse else ""))


def daily_demand(conn: Conn, first: date, days: int, *, key: str | None = None,
                 warehouse: str | None = None) -> dict[str, Demand]:
    """Each key's demand on the `days` days from `first`; keys without any ledger row in
    them are absent."""
    day = f"(({BUSINESS_TIME}) AT TIME ZONE 'UTC')::date - %(first)s::date"
    rows = conn.execute(
        "SELECT key, array_agg(day ORDER BY day), array_agg(shipped ORDER BY day),"
        " array_agg(lost ORDER BY day) FROM ("
        f"SELECT key, {day} AS day,"
        " coalesce(-sum(on_hand_delta) FILTER (WHERE event_type = 'shipment.dispatched'), 0)"
        " AS shipped, coalesce(sum(lost), 0) AS lost FROM ledger"
        f" WHERE {BUSINESS_TIME} >= %(since)s AND {BUSINESS_TIME} < %(until)s"
        + _scope(key, warehouse) + " GROUP BY 1, 2) AS d GROUP BY key",
        {"first": first, "since": _midnight(first),
         "until": _midnight(first + timedelta(days=days)), "key": key,
         "warehouse": warehouse}).fetchall()
    got = {}
    for k, at, shipped, lost in rows:
        demand = Demand(np.zeros(days), np.zeros(days))
        demand.shipped[at] = shipped
        demand.lost[at] = lost
        got[str(k)] = demand
    return got


class StockDays(NamedTuple):
    """A key's stock at the end of each day, oldest first."""

    on_hand: Days
    position: Days  # available + in transit + on order, as a reorder suggestion counts it
    on_order: Days


def stock_by_day(conn: Conn, key: str, first: date, days: int) -> StockDays:
    """The key's stock at the end of each of the `days` days from `first` (in business
    time: after the last movement applied among those of the day or before)."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (day) greatest((({BUSINESS_TIME}) AT TIME ZONE 'UTC')::date"
        " - %(first)s::date, -1) AS day, on_hand_after,"
        " on_hand_after - reserved_after + in_transit_after + on_order_after, on_order_after"
        f" FROM ledger WHERE key = %(key)s AND {BUSINESS_TIME} < %(until)s"
        " ORDER BY day, version DESC",
        {"key": key, "first": first, "until": _midnight(first + timedelta(days=days))},
    ).fetchall()
    at = {int(d): [float(v) for v in levels] for d, *levels in rows}
    out, level = np.zeros((3, days)), at.get(-1, [0.0, 0.0, 0.0])  # what the period opens with
    for d in range(days):
        level = at.get(d, level)
        out[:, d] = level
    return StockDays(out[0], out[1], out[2])


class ThresholdChange(NamedTuple):
    """A change of a key's reorder point and safety stock: when it applied (business time)
    and the values it set, None where they are not known."""

    at: datetime
    reorder_point: int | None
    safety_stock: int | None


Recorded = tuple[int, int, int, int] | None  # set (reorder point, safety stock), replaced


def threshold_changes(conn: Conn, key: str) -> list[ThresholdChange]:
    """The key's thresholds over time, in the order applied: its first movement (the
    defaults a new key starts with), then each `stock.thresholds-set` that changed them,
    each with its values where known (see `known_values`)."""
    rows = conn.execute(
        "SELECT c.at, h.reorder_point, h.safety_stock, h.previous_reorder_point,"
        " h.previous_safety_stock, s.reorder_point, s.safety_stock FROM ("
        f"SELECT key, version, {BUSINESS_TIME} AS at FROM ledger WHERE key = %(key)s"
        " AND (event_type = 'stock.thresholds-set'"
        " OR version = (SELECT min(version) FROM ledger WHERE key = %(key)s))) AS c"
        " JOIN stock s ON s.key = c.key"
        " LEFT JOIN threshold_history h ON h.key = c.key AND h.version = c.version"
        " ORDER BY c.version", {"key": key}).fetchall()
    if not rows:
        return []
    return known_values([(r[0], None if r[1] is None else (r[1], r[2], r[3], r[4]))
                         for r in rows], (rows[0][5], rows[0][6]))


def known_values(changes: list[tuple[datetime, Recorded]],
                 current: tuple[int, int]) -> list[ThresholdChange]:
    """Each change's values: its own where `threshold_history` recorded them (migration
    0021), else the ones the next change replaced where that one was recorded, else, for
    the last change, the stock row's `current` values; else unknown (a change before the
    table existed, or the defaults a key started with when the next change is as old)."""
    known = []
    for i, (at, recorded) in enumerate(changes):
        after = changes[i + 1][1] if i + 1 < len(changes) else None
        if recorded is not None:
            known.append(ThresholdChange(at, recorded[0], recorded[1]))
        elif after is not None:
            known.append(ThresholdChange(at, after[2], after[3]))
        elif i == len(changes) - 1:
            known.append(ThresholdChange(at, *current))
        else:
            known.append(ThresholdChange(at, None, None))
    return known


def positions(conn: Conn, *, key: str | None = None,
              warehouse: str | None = None) -> dict[str, Position]:
    """The stock position of each key (of `key`, or of a warehouse's keys)."""
    rows = conn.execute(
        "SELECT key, on_hand, available, in_transit, on_order, reorder_point, safety_stock,"
        " version FROM stock"
        " WHERE true" + _scope(key, warehouse) + " ORDER BY key",
        {"key": key, "warehouse": warehouse}).fetchall()
    return {str(r[0]): Position(*map(int, r[1:])) for r in rows}


def lead_times(conn: Conn) -> dict[str, int]:
    """Scope (a warehouse, or a key) -> lead time in days."""
    return {str(s): int(d) for s, d in conn.execute("SELECT scope, days FROM lead_times")}


def set_lead_time(conn: Conn, scope: str, days: int) -> None:
    """Set the lead time of `scope` (a warehouse, or a key SKU@WH, which wins over its
    warehouse's) to `days`."""
    conn.execute("INSERT INTO lead_times (scope, days) VALUES (%s, %s) ON CONFLICT (scope)"
                 " DO UPDATE SET days = excluded.days, updated_at = now()", (scope, days))


def clear_lead_time(conn: Conn, scope: str) -> bool:
    """Forget a scope's lead time; False if it had none."""
    return conn.execute("DELETE FROM lead_times WHERE scope = %s", (scope,)).rowcount > 0


def service_levels(conn: Conn) -> dict[str, float]:
    """Scope (a warehouse, or a key) -> service-level target."""
    return {str(s): float(v) for s, v in conn.execute("SELECT scope, level FROM service_levels")}


def set_service_level(conn: Conn, scope: str, level: float) -> None:
    """Set the service-level target of `scope` (a warehouse, or a key SKU@WH, which wins
    over its warehouse's)."""
    conn.execute("INSERT INTO service_levels (scope, level) VALUES (%s, %s)"
                 " ON CONFLICT (scope) DO UPDATE SET level = excluded.level, updated_at = now()",
                 (scope, level))


def clear_service_level(conn: Conn, scope: str) -> bool:
    """Forget a scope's service-level target; False if it had none."""
    return conn.execute("DELETE FROM service_levels WHERE scope = %s", (scope,)).rowcount > 0
