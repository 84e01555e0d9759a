"""Keep what a `stockflow forecast` run found, per key, for the console's key page: the
forecast with its intervals, the demand just before it, and the reorder suggestion with
the position and targets it came from. The console shows the latest run's, never a
forecast of its own: a run is the buyer's act, and what it suggested (and published) is
what the page must say."""

from __future__ import annotations

from datetime import datetime

from stockflow.adapters.db import forecasts
from stockflow.adapters.db.store import Conn
from stockflow.usecases.forecasting import Forecasts

__all__ = ["RECENT_DAYS", "keep_forecasts", "kept_rows"]

RECENT_DAYS = 28  # the demand kept before the forecast: four weeks, to judge it by


def kept_rows(found: Forecasts, *, made_at: datetime, scope: str,
              published: bool) -> list[forecasts.KeptForecast]:
    """A row per key `found` planned. `published`: the run published its suggestions (a
    key's went out if it had something to order)."""
    days = (found.as_of - found.first).days
    rows = []
    for key, p in found.planned.items():
        f, s, pos = p.forecast, p.suggestion, p.position
        history = found.history.get(key)
        recent = ((history.shipped + history.lost)[-RECENT_DAYS:].tolist() if history
                  else [0.0] * min(days, RECENT_DAYS))
        rows.append(forecasts.KeptForecast(
            key=key, as_of=found.as_of, made_at=made_at, scope=scope,
            run_keys=len(found.planned), published=published and s.suggested_quantity > 0,
            model=f.model, kind=f.kind, mean=list(f.mean),
            intervals={str(level): [list(low), list(high)]
                       for level, (low, high) in sorted(f.intervals.items())},
            recent=recent, lead_time_days=s.lead_time_days, review_days=s.review_days,
            service_level=s.service_level, lead_time_demand=s.lead_time_demand,
            safety_stock=s.safety_stock, reorder_point=s.reorder_point,
            order_up_to=s.order_up_to, on_hand=pos.on_hand, available=pos.available,
            in_transit=pos.in_transit, on_order=pos.on_order, position=s.position,
            suggested_quantity=s.suggested_quantity, stock_version=pos.version))
    return rows


def keep_forecasts(conn: Conn, found: Forecasts, *, made_at: datetime, scope: str,
                   published: bool) -> int:
    """Keep each planned key's forecast and suggestion in one transaction, replacing the
    key's earlier one; returns how many were kept."""
    with conn.transaction():
        return forecasts.keep(conn, kept_rows(found, made_at=made_at, scope=scope,
                                              published=published))
