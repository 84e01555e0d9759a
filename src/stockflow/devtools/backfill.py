"""A year (or any number of days) of demand history with known patterns, published with
past event times, so forecasts can be tried on a fresh clone (`stockflow simulate
--backfill-days N`).

Each key draws a pattern: most are **smooth** (Poisson demand around a level, with a
weekly profile, a linear trend and a few promotions that multiply demand for some days),
and go through the life of a catalogue item: some are launched during the history and
ramp up over weeks, some are phased out and decay, some see their level shift for good on
one day (a price change, a competitor); the rest are **intermittent** slow movers (on
most days nothing, now and then a few units). Demand is shipped from stock; stock is
replenished to three weeks of demand when it falls under one week's, after a lead time of
one to five days, by costed receipts, so stock-outs happen now and then, and demand that
finds no stock is placed as an order and rejected: lost demand, which the ledger keeps
apart from what was shipped.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = ["Pattern", "history", "patterns"]

# weekday factors, Monday first, each averaging 1
_WEEKS = {
    "retail": (0.8, 0.8, 0.9, 1.0, 1.2, 1.5, 0.8),
    "business": (1.25, 1.25, 1.2, 1.2, 1.1, 0.5, 0.5),
    "flat": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
}


@dataclass(frozen=True)
class Pattern:
    """What a key's daily demand is made of (the truth a forecast is measured against)."""

    kind: Literal["smooth", "intermittent"]
    level: float  # smooth: mean units a day at the start; intermittent: mean size
    trend: float  # smooth: relative change over a year (0.2: a fifth more by its end)
    week: str  # smooth: the weekly profile's name
    promotions: tuple[tuple[int, int, float], ...]  # (first day, days, demand multiplier)
    chance: float  # intermittent: the chance of any demand on a day
    price: float  # what a unit costs to buy, in EUR
    launch: tuple[int, int] = (0, 0)  # (day it is launched, days its demand ramps up)
    phase_out: tuple[int, float] | None = None  # (day its decay begins, half-life in days)
    shift: tuple[int, float] | None = None  # (day, factor its level is multiplied by)

    def expected(self, day: int) -> float:
        """Mean demand on `day` (0: the first day of the history)."""
        if self.kind == "intermittent":
            return self.chance * self.level
        launched, ramp = self.launch
        if day < launched:
            return 0.0
        mean = self.level * (1 + self.trend * day / 365) * _WEEKS[self.week][day % 7]
        if ramp:
            mean *= min(1.0, (day - launched + 1) / ramp)
        if self.phase_out is not None and day >= self.phase_out[0]:
            mean *= 0.5 ** ((day - self.phase_out[0]) / self.phase_out[1])
        if self.shift is not None and day >= self.shift[0]:
            mean *= self.shift[1]
        for first, length, lift in self.promotions:
            if first <= day < first + length:
                mean *= lift
        return mean


def patterns(keys: list[str], days: int, seed: int,
             intermittent: float = 0.4) -> dict[str, Pattern]:
    """A pattern per key, `intermittent` of them slow movers. Of the smooth ones, about a
    fifth are launched during the history (at least 120 days before its end), a sixth are
    phased out over its last months, and a third see their level shift once."""
    rng = random.Random(seed)  # noqa: S311 - simulated demand
    got = {}
    for key in keys:
        price = round(rng.uniform(2, 200), 2)
        if rng.random() < intermittent:
            got[key] = Pattern("intermittent", rng.uniform(1, 6), 0.0, "flat", (),
                               rng.uniform(0.03, 0.3), price)
            continue
        promos = [(rng.randrange(days), rng.randint(3, 7), rng.uniform(1.5, 3.0))
                  for _ in range(rng.randint(0, max(1, days // 90)))]
        life = rng.random()
        launch = ((rng.randrange(max(1, days - 120)), rng.randint(28, 70)) if life < 0.2
                  else (0, 0))
        phase_out = ((rng.randint(max(0, days - 180), max(0, days - 60)),
                      rng.uniform(30, 90)) if 0.2 <= life < 0.37 else None)
        shift = ((rng.randrange(days), rng.choice((rng.uniform(0.5, 0.8),
                                                   rng.uniform(1.3, 1.8))))
                 if rng.random() < 0.33 else None)
        got[key] = Pattern("smooth", math.exp(rng.uniform(math.log(2), math.log(60))),
                           rng.uniform(-0.5, 1.0), rng.choice(list(_WEEKS)),
                           tuple(sorted(promos)), 1.0, price, launch, phase_out, shift)
    return got


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 40:  # normal approximation: Knuth's method needs e**-mean
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def history(pats: dict[str, Pattern], days: int, end: datetime,
            seed: int) -> Iterator[tuple[str, dict[str, Any], datetime]]:
    """The events of the `days` days before `end`'s day, in time order: (type, data, event
    time). Each day brings its receipts (at 6:00), then its shipments, then its turned-away
    orders (at 21:00), so a tool that must not publish a key's event before the key's
    events on other topics are applied waits at most three times a day, not at every key.
    Movement ids (receipt, shipment and order ids) are derived from `seed` and unique
    among the history, so they can serve as event ids: publishing the same history again
    is then a counted duplicate."""
    rng = random.Random(seed + 1)  # noqa: S311 - simulated demand
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    on_hand = dict.fromkeys(pats, 0)
    due: dict[str, tuple[int, int]] = {}  # key -> (day it arrives, units)
    n = 0

    def ident(prefix: str) -> str:
        nonlocal n
        n += 1
        return f"bf{seed}-{prefix}{n}"

    for day in range(days):
        midnight = start + timedelta(days=day)
        receipts: list[tuple[str, dict[str, Any], datetime]] = []
        shipments: list[tuple[str, dict[str, Any], datetime]] = []
        turned_away: list[tuple[str, dict[str, Any], datetime]] = []
        for key, p in pats.items():
            sku, _, warehouse = key.partition("@")
            at = {"sku": sku, "warehouse": warehouse}
            mean = p.expected(day)
            weekly = 7 * max(mean, 0.2)
            if day == 0:
                due[key] = (0, math.ceil(3 * weekly))
            arriving = due.get(key)
            if arriving is not None and arriving[0] <= day:
                del due[key]
                cost = p.price * rng.uniform(0.9, 1.1)
                receipts.append(("receipt.received", {
                    **at, "receipt_id": ident("r"), "quantity": arriving[1],
                    "unit_cost": f"{cost:.2f}", "currency": "EUR"},
                    midnight + timedelta(hours=6)))
                on_hand[key] += arriving[1]
            if p.kind == "smooth":
                demand = _poisson(rng, mean)
            else:
                demand = 1 + _poisson(rng, p.level - 1) if rng.random() < p.chance else 0
            shipped = min(demand, max(on_hand[key], 0))
            if shipped:
                when = midnight + timedelta(hours=rng.uniform(8, 20))
                shipments.append(("shipment.dispatched", {
                    **at, "shipment_id": ident("s"), "quantity": shipped}, when))
                on_hand[key] -= shipped
            if demand > shipped:  # no stock left for it: placed, and turned away
                turned_away.append(("order.placed", {
                    **at, "order_id": ident("o"), "line_id": "1",
                    "quantity": demand - shipped}, midnight + timedelta(hours=21)))
            if key not in due and on_hand[key] < weekly:
                due[key] = (day + rng.randint(1, 5), math.ceil(3 * weekly))
        yield from receipts
        yield from sorted(shipments, key=lambda e: e[2])
        yield from turned_away
