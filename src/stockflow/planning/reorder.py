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

Replayed on held-out demand (`bench/policy.py`), that rule keeps far less than its
promise: its reorder point covers the lead time but not the review period, and its errors
are not independent from day to day. `top_up` is the rule that keeps it: at every review
the position is topped up to a level covering lead time plus review, the safety stock
from the backtest errors summed over those days (`cover_spread`) times a multiplier
calibrated out of sample on the keys' backtests (`calibrated_multiplier`), or, for an
intermittent key, from the quantile of its recent demand summed over those days. On the
backfill (3 seeds, 2,983 keys, a week's lead time and review) it delivers 95.3% of cycles
without a stock-out for smooth keys and 94.6% for intermittent ones at a 95% target,
against 30% and 84% for `suggest`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["LEAD_TIME_DAYS", "MIN_CALIBRATION_SUMS", "RECENT_DEMAND_DAYS", "REVIEW_DAYS",
           "SERVICE_LEVEL", "SMALL_SAMPLE_MULTIPLIER", "Outlook", "Suggestion",
           "calibrated_multiplier", "calibrated_multipliers",
           "cover_spread", "demand_over", "lead_time", "scoped", "suggest", "top_up"]

Series = npt.NDArray[np.float64]
T = TypeVar("T")

SERVICE_LEVEL = 0.95
LEAD_TIME_DAYS = 7  # where neither the key nor its warehouse has one
REVIEW_DAYS = 7  # how often a buyer looks at the suggestions
_WEEK = 7
MIN_CALIBRATION_SUMS = 200  # backtest sums below which the multiplier is not estimated
# The pooled multiplier over the normal quantile on the backfill (bench/policy.py, 3 seeds,
# 95%: 2.48-2.66 against 1.64; 90%: 1.72-1.83 against 1.28): used for a run of few keys.
SMALL_SAMPLE_MULTIPLIER = 1.5
RECENT_DEMAND_DAYS = 365  # an intermittent key's level reads a year of its demand


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
    position: int  # available + in transit + on order
    suggested_quantity: int  # 0: the position is above the reorder point


def scoped(key: str, table: Mapping[str, T], default: T) -> T:
    """The key's own setting in `table`, else its warehouse's, else `default`."""
    for scope in (key, key.partition("@")[2]):
        if scope in table:
            return table[scope]
    return default


def lead_time(key: str, table: Mapping[str, int], default: int = LEAD_TIME_DAYS) -> int:
    """The key's own lead time, else its warehouse's, else `default`."""
    return scoped(key, table, default)


def demand_over(mean: Sequence[float], days: int) -> float:
    """Forecast units over the next `days` days; past the horizon, its last week repeats."""
    if days <= len(mean):
        return float(sum(mean[:days]))
    week = list(mean[-_WEEK:])
    extra = days - len(mean)
    return float(sum(mean)) + sum(week[i % len(week)] for i in range(extra))


def cover_spread(errors: Series, days: int) -> float:
    """The spread of a forecast's error summed over `days` days, from its backtest's daily
    errors (a row per origin, actual minus forecast): the daily errors' second moment and
    their autocorrelation up to the row's length. Moments about 0, not the mean, so a
    forecast's bias counts; correlated errors add up faster than the square root of the
    days (on the backfill, 1.6 times over a week)."""
    if errors.size == 0:
        return 0.0
    var = days * float((errors * errors).mean())
    for lag in range(1, min(days, errors.shape[1])):
        var += 2 * (days - lag) * float((errors[:, lag:] * errors[:, :-lag]).mean())
    return math.sqrt(max(var, 0.0))


def calibrated_multiplier(backtests: Iterable[Series], days: int, service_level: float,
                          *, least: int = MIN_CALIBRATION_SUMS) -> float:
    """How many `cover_spread`s above the forecast a level must be to hold the service
    level: the quantile of the backtests' errors summed over `days` days, each over the
    spread the key's other backtest windows give (as the level will be used: on errors it
    was not made from), pooled over the keys (one key has too few windows for a quantile
    of its own). Its excess over the normal quantile, which an estimated spread adds,
    shrinks with the windows it is estimated from (first order: as 1/n); the level uses
    all n windows, the held-out sums saw n - 1, so that excess is scaled by (n - 1)/n
    (measured on the backfill: 96.1% of cycles without a stock-out at a 95% target
    before, 95.3% after). With fewer than `least` such sums, the normal quantile times
    `SMALL_SAMPLE_MULTIPLIER` (what the pooled quantile was on the backfill)."""
    return calibrated_multipliers(backtests, days, [service_level], least=least)[
        service_level]


def calibrated_multipliers(backtests: Iterable[Series], days: int,
                           service_levels: Iterable[float], *,
                           least: int = MIN_CALIBRATION_SUMS) -> dict[float, float]:
    """`calibrated_multiplier` for each of `service_levels`, the backtests' held-out sums
    computed once for them all."""
    ratios: list[float] = []
    windows: list[int] = []
    for errors in backtests:
        if errors.ndim != 2 or errors.shape[0] < 2 or errors.shape[1] < days:
            continue
        for j in range(errors.shape[0]):
            spread = cover_spread(np.delete(errors, j, axis=0), days)
            if spread > 0:
                ratios.append(float(errors[j, :days].sum()) / spread)
                windows.append(errors.shape[0])
    got = {}
    for level in service_levels:
        z = NormalDist().inv_cdf(level)
        if len(ratios) < least:
            got[level] = z * SMALL_SAMPLE_MULTIPLIER
            continue
        n = float(np.median(windows))
        held_out = max(float(np.quantile(ratios, level)), z)
        got[level] = z + (held_out - z) * (n - 1) / n
    return got


@dataclass(frozen=True)
class Outlook:
    """What a key's forecast says about the demand a level must cover: the forecast
    (units a day), the key's class, the chosen model's backtest errors (a row per origin,
    actual minus forecast) and its recent daily demand (`RECENT_DEMAND_DAYS`, oldest first)."""

    mean: Sequence[float]
    kind: str  # "smooth" or "intermittent", as the forecast classified the key
    errors: Series
    recent: Series


def top_up(outlook: Outlook, *, multiplier: float, available: int, in_transit: int,
           on_order: int = 0, lead_time_days: int = LEAD_TIME_DAYS,
           review_days: int = REVIEW_DAYS, service_level: float = SERVICE_LEVEL,
           ) -> Suggestion:
    """What to order now under the periodic review that keeps its service level: at each
    review the position is topped up to a level that covers the lead time and the review
    period, the time until the next order could arrive. That level is the forecast's sum
    over those days plus a safety stock: for a smooth key `multiplier` (see
    `calibrated_multiplier`) times `cover_spread`; for an intermittent key, whose demand
    is rare spikes a normal spread misjudges, what takes the level to the service level's
    quantile of its recent demand summed over as many days. The reorder point is the
    level itself: a review that finds the position under it orders the difference."""
    if not outlook.mean:
        raise ValueError("a forecast of at least one day is needed")
    if lead_time_days < 1 or review_days < 1:
        raise ValueError("lead time and review period are at least a day")
    if not 0.5 <= service_level < 1:
        raise ValueError(f"service level: from 0.5 to under 1; got {service_level}")
    cover = lead_time_days + review_days
    expected = demand_over(outlook.mean, cover)
    if outlook.kind == "intermittent":
        recent = outlook.recent
        sums = np.convolve(recent, np.ones(cover), mode="valid") if len(recent) >= cover \
            else np.zeros(1)
        level = math.ceil(max(expected, float(np.quantile(sums, service_level))))
    else:
        level = math.ceil(expected + max(multiplier, 0.0) * cover_spread(outlook.errors, cover))
    position = available + in_transit + on_order
    return Suggestion(lead_time_days, review_days, service_level,
                      round(demand_over(outlook.mean, lead_time_days), 3),
                      max(level - math.ceil(expected), 0), level, level, position,
                      max(level - position, 0))


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
