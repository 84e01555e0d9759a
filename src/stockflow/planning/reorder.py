"""Reorder suggestions from a key's forecast: safety stock, reorder point and how much to
order, for a lead time and a target service level.

The policy is the textbook periodic review with a reorder point. Demand over `d` days is
the forecast's sum over them (beyond its horizon, its last week repeats); its error is
taken as normal with a daily standard deviation `spread` (the chosen model's backtest
errors), independent from day to day, so over `d` days it is `spread * sqrt(d)`.

- safety stock = z * spread * sqrt(lead time), z the normal quantile of the service level
  (the chance of no stock-out while an order is on its way);
- reorder point = demand over the lead time + safety stock;
- order-up-to = demand over the lead time and the review period + z * spread *
  sqrt(lead time + review period);
- when the inventory position (available + in transit) is at or under the reorder point,
  the suggestion is what brings it up to the order-up-to level; otherwise nothing.

Units are whole: each figure is rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["LEAD_TIME_DAYS", "REVIEW_DAYS", "SERVICE_LEVEL", "Suggestion", "demand_over",
           "lead_time", "suggest"]

SERVICE_LEVEL = 0.95
LEAD_TIME_DAYS = 7  # where neither the key nor its warehouse has one
REVIEW_DAYS = 7  # how often a buyer looks at the suggestions
_WEEK = 7


@dataclass(frozen=True)
class Suggestion:
    """A reorder suggestion: safety stock, reorder point, order-up-to level and how much to
    order now."""

    lead_time_days: int
    review_days: int
    service_level: float
    lead_time_demand: float
    safety_stock: int
    reorder_point: int
    order_up_to: int
    position: int  # available + in transit
    suggested_quantity: int  # 0: the position is above the reorder point


def lead_time(key: str, table: Mapping[str, int], default: int = LEAD_TIME_DAYS) -> int:
    """The key's own lead time, else its warehouse's, else `default`."""
    return table.get(key) or table.get(key.partition("@")[2]) or default


def demand_over(mean: Sequence[float], days: int) -> float:
    """Forecast units over the next `days` days; past the horizon, its last week repeats."""
    if days <= len(mean):
        return float(sum(mean[:days]))
    week = list(mean[-_WEEK:])
    extra = days - len(mean)
    return float(sum(mean)) + sum(week[i % len(week)] for i in range(extra))


def suggest(mean: Sequence[float], spread: float, *, available: int, in_transit: int,
            lead_time_days: int = LEAD_TIME_DAYS, review_days: int = REVIEW_DAYS,
            service_level: float = SERVICE_LEVEL) -> Suggestion:
    """What to order now, from a forecast `mean` (units a day) whose daily error has the
    standard deviation `spread`."""
    if not mean:
        raise ValueError("a forecast of at least one day is needed")
    if lead_time_days < 1 or review_days < 1:
        raise ValueError("lead time and review period are at least a day")
    if not 0.5 <= service_level < 1:
        raise ValueError(f"service level: from 0.5 to under 1; got {service_level}")
    z = NormalDist().inv_cdf(service_level)
    cover = lead_time_days + review_days
    lead = round(demand_over(mean, lead_time_days), 3)  # as reported
    safety = math.ceil(z * max(spread, 0.0) * math.sqrt(lead_time_days))
    reorder_point = math.ceil(lead) + safety
    order_up_to = max(reorder_point, math.ceil(
        demand_over(mean, cover) + z * max(spread, 0.0) * math.sqrt(cover)))
    position = available + in_transit
    quantity = order_up_to - position if position <= reorder_point else 0
    return Suggestion(lead_time_days, review_days, service_level, lead, safety,
                      reorder_point, order_up_to, position, max(quantity, 0))
