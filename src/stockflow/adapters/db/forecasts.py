"""Each key's latest forecast and reorder suggestion, kept by `stockflow forecast` for the
console (migration 0020): written a run at a time, by COPY into a temporary table and one
upsert (100,000 keys in one statement), read a key at a time by its primary key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["KeptForecast", "keep", "kept", "kept_async"]


class KeptForecast(NamedTuple):
    """A key's forecast and suggestion as a run made them (`kept_forecasts`' columns)."""

    key: str
    as_of: date  # the forecast's first day; the history ends the day before
    made_at: datetime  # when the run read the stock
    scope: str  # "all", "warehouse WH-1" or "key": what the run covered
    run_keys: int  # keys the run planned
    published: bool  # this suggestion went out as reorder.suggested
    model: str
    kind: str  # "smooth" or "intermittent"
    mean: list[float]  # units a day from as_of
    intervals: dict[str, list[list[float]]]  # level ("80") -> [low per day, high per day]
    recent: list[float]  # demand a day of the days before as_of, oldest first
    lead_time_days: int
    review_days: int
    service_level: float
    lead_time_demand: float
    safety_stock: int
    reorder_point: int
    order_up_to: int
    on_hand: int
    available: int
    in_transit: int
    on_order: int
    position: int  # available + in transit + on order
    suggested_quantity: int
    stock_version: int  # the key's version the position was read at


_COLUMNS = ", ".join(KeptForecast._fields)
_LINES = 1000  # rows a COPY write carries
_UPDATED = ", ".join(f"{c} = EXCLUDED.{c}" for c in KeptForecast._fields if c != "key")


def keep(conn: Conn, rows: Sequence[KeptForecast]) -> int:
    """Upsert `rows` inside the caller's transaction; a key's row is replaced only by one
    made no earlier. Returns the rows written."""
    if not rows:
        return 0
    conn.execute("CREATE TEMPORARY TABLE kept_in (LIKE kept_forecasts) ON COMMIT DROP")
    with conn.cursor().copy(f"COPY kept_in ({_COLUMNS}) FROM STDIN") as copy:
        for start in range(0, len(rows), _LINES):
            copy.write("".join(_line(row) for row in rows[start:start + _LINES]))
    written = conn.execute(
        f"INSERT INTO kept_forecasts ({_COLUMNS}) SELECT {_COLUMNS} FROM kept_in"
        f" ON CONFLICT (key) DO UPDATE SET {_UPDATED}"
        " WHERE kept_forecasts.made_at <= EXCLUDED.made_at")
    return written.rowcount


# COPY's text format, written here: psycopg adapting each list element by element took 21 s
# for 100,000 rows of 98 numbers each; this way the whole keep takes 11 s (measured on two
# cores), against some 12 minutes of forecasting them
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_WHOLE = ("safety_stock", "reorder_point", "order_up_to", "on_hand", "available",
          "in_transit", "on_order", "position", "suggested_quantity", "stock_version")


def _text(value: str) -> str:
    return value.translate(_ESCAPES)


def _floats(values: Sequence[float]) -> str:
    return "{" + ",".join(map(str, values)) + "}"  # str: a numpy float's is its digits


def _line(r: KeptForecast) -> str:
    """`r` as a line of COPY's text format, in `_COLUMNS`' order."""
    return "\t".join((
        _text(r.key), r.as_of.isoformat(), r.made_at.isoformat(), _text(r.scope),
        str(r.run_keys), "t" if r.published else "f", _text(r.model), _text(r.kind),
        _floats(r.mean), _text(json.dumps(r.intervals)), _floats(r.recent),
        str(r.lead_time_days), str(r.review_days), str(float(r.service_level)),
        str(float(r.lead_time_demand)), *(str(int(getattr(r, f))) for f in _WHOLE))) + "\n"


_SELECT = f"SELECT {_COLUMNS} FROM kept_forecasts WHERE key"


def _kept(row: tuple[Any, ...]) -> KeptForecast:
    return KeptForecast(*row)


def kept(conn: Conn, keys: Sequence[str]) -> dict[str, KeptForecast]:
    """The kept forecasts of `keys` that have one."""
    rows = conn.execute(f"{_SELECT} = ANY(%s)", (list(keys),)).fetchall()
    return {r[0]: _kept(r) for r in rows}


async def kept_async(conn: AsyncConn, key: str) -> KeptForecast | None:
    """The key's kept forecast, if a run kept one (the console's read)."""
    cur = await conn.execute(f"{_SELECT} = %s", (key,))  # its primary key: one probe
    row = await cur.fetchone()
    return _kept(row) if row is not None else None
