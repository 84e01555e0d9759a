"""Allocation: which warehouses serve the lines of an order, as one pure function.

`allocate(order, warehouses, snapshot, excluded)` returns an `Allocation` (each line's
full quantity in parts, one per warehouse) or a `Shortfall` (what each line could have),
or raises `InvalidOrderError`. The coordinator loads the registry and the snapshot, calls
it and places the parts; nothing here reads a clock, a database or a random source, so
the same input always gives the same answer.

The rules are the contract's (CONTRACT.md, "Orders"); where it is silent:

- Candidates are the registered, active warehouses; snapshot figures of any other are
  ignored, and figures below 0 count as 0.
- Pinned lines are served first, then the others in request order, from one snapshot:
  lines of one SKU draw from the same units. A pinned line uses its warehouse only, and
  is short if `excluded` names that warehouse for it (it never moves).
- A line takes what it can from each of its warehouses in turn: `priority` ranks them by
  (priority, code); `most_available` by the units of the line's SKU still free when the
  line is served, most first, then (priority, code); `nearest` by haversine distance
  to `ship_to`, those without a location after all others, then (priority, code).
- `fewest_shipments` ships from the pinned lines' warehouses and the fewest others that
  let the whole order be served (a pinned warehouse may serve other lines too). Among
  sets of one size: with `ship_to`, the fewest warehouses without a location, then the
  smallest sum of the warehouses' distances to it, then the codes; without, the smallest
  sum of priorities, then the codes (the sorted tuple of codes, the smallest first). In
  the set, lines split as under `nearest` when `ship_to` is given, else as under
  `priority`. Only warehouses holding units some line may take are candidates; beyond
  16 of them (or once exclusions defeat 1,024 sets that hold units enough) the search
  is a greedy cover that may not be minimal (`allocation_sets`). `ships_from` names the
  warehouses an order already ships from (re-sourcing a lost part): they belong to the
  set like pinned lines' warehouses, so lost units come from them whenever they can, at
  no new shipment, and otherwise from the fewest others.
- Exact: when those preferences strand a line (exclusions make lines compete for a
  warehouse), earlier lines move to other warehouses they may use, so a `Shortfall`
  comes back only when no assignment respecting pins and exclusions exists
  (`allocation_flow`). Whenever serving the lines in turn by the preferences suffices,
  that is the answer: nothing moves.
- `Shortfall` lists every line in request order. `allocatable` is what the line gets
  when lines are served in the order above, each taking the most it can while every
  line before it keeps what it has (earlier lines may move): the lexicographically
  greatest that the stock allows. It does not depend on the strategy, the order cut to
  these quantities would be allocated, and their sum is the most the order can have.
- `Allocation` lists lines in request order, each line's parts in the order it took them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from stockflow import StockflowError
from stockflow.domain.allocation_flow import Need, Rank, serve
from stockflow.domain.allocation_sets import fewest
from stockflow.domain.warehouses import Location, Warehouse

__all__ = [
    "EARTH_RADIUS_KM",
    "STRATEGIES",
    "Allocation",
    "InvalidOrderError",
    "InvalidReason",
    "LineAllocation",
    "LineRequest",
    "LineShort",
    "OrderRequest",
    "Part",
    "Shortfall",
    "Snapshot",
    "Strategy",
    "allocate",
    "distance_km",
]

Strategy = Literal["priority", "most_available", "nearest", "fewest_shipments"]
STRATEGIES: tuple[Strategy, ...] = ("priority", "most_available", "nearest", "fewest_shipments")
InvalidReason = Literal[
    "unknown_strategy", "missing_ship_to", "unknown_warehouse", "inactive_warehouse",
    "invalid_line"]
EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius

# (sku, warehouse) -> units this order may take there: sellable minus parts in flight
Snapshot = Mapping[tuple[str, str], int]
_NOTHING_EXCLUDED: Mapping[str, AbstractSet[str]] = MappingProxyType({})

# Frozen dataclasses rather than the NamedTuples of the stock rules: an Allocation must
# never compare equal to a Shortfall or to a bare tuple, and allocation runs once per
# order, not once per event, so the construction cost those rules avoid does not matter.


@dataclass(frozen=True, slots=True)
class LineRequest:
    """An order line to allocate: its SKU and quantity, and the warehouse it is pinned to."""

    line_id: str
    sku: str
    quantity: int
    warehouse: str | None = None  # pinned: served there or not at all


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to allocate: its lines, the strategy, and where it ships to."""

    lines: tuple[LineRequest, ...]
    strategy: Strategy = "priority"
    ship_to: Location | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """Units of a line served from one warehouse."""

    warehouse: str
    quantity: int


@dataclass(frozen=True, slots=True)
class LineAllocation:
    """A line served in full, as parts across warehouses."""

    line_id: str
    sku: str
    quantity: int
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Allocation:
    """Every line of an order served in full."""

    lines: tuple[LineAllocation, ...]


@dataclass(frozen=True, slots=True)
class LineShort:
    """A line that cannot be served in full, and what could be given it."""

    line_id: str
    sku: str
    requested: int
    allocatable: int


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why an order cannot be allocated: its lines that cannot be served in full."""

    lines: tuple[LineShort, ...]


class InvalidOrderError(StockflowError):
    """An order no stock could serve as asked: its `reason` is one of `InvalidReason`
    (`invalid_line`: a quantity below 1 or a line_id used twice)."""

    def __init__(self, reason: InvalidReason, message: str) -> None:
        super().__init__(message)
        self.reason: InvalidReason = reason


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance by the haversine formula, on a sphere of the Earth's mean
    radius: within 0.5 % of the ellipsoid, plenty to rank warehouses."""
    lat_a, lat_b = math.radians(a.lat), math.radians(b.lat)
    h = (math.sin((lat_b - lat_a) / 2) ** 2
         + math.cos(lat_a) * math.cos(lat_b) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def allocate(
    order: OrderRequest, warehouses: Iterable[Warehouse], snapshot: Snapshot,
    excluded: Mapping[str, AbstractSet[str]] = _NOTHING_EXCLUDED,
    ships_from: AbstractSet[str] = frozenset(),
) -> Allocation | Shortfall:
    """Allocates every line of `order` or says what each could have. `excluded` maps a
    line_id to warehouses that must not serve it (they rejected it: re-sourcing);
    `ships_from`, the warehouses the order already ships from (for `fewest_shipments`)."""
    active = _active(order, warehouses)
    stock = {(sku, w): max(units, 0) for (sku, w), units in snapshot.items() if w in active}
    # pinned lines first; sorted is stable, so request order holds within each group
    needs = [Need(line.line_id, line.sku, line.quantity)
             for line in sorted(order.lines, key=lambda line: line.warehouse is None)]
    key = _preference(order)
    ranked = [w.code for w in sorted(active.values(), key=key)]
    held = serve(needs, stock, _ranker(order, excluded, ranked, None))
    if any(sum(held[need.line_id].values()) < need.quantity for need in needs):
        return Shortfall(tuple(
            LineShort(line.line_id, line.sku, line.quantity, sum(held[line.line_id].values()))
            for line in order.lines))
    if order.strategy == "fewest_shipments":
        chosen = _fewest(order, active, stock, excluded, ranked, needs,
                         frozenset(ships_from) & active.keys())
        held = serve(needs, stock, _ranker(order, excluded, ranked, chosen))
    return Allocation(tuple(
        LineAllocation(line.line_id, line.sku, line.quantity,
                       tuple(Part(w, n) for w, n in held[line.line_id].items()))
        for line in order.lines))


def _active(order: OrderRequest, warehouses: Iterable[Warehouse]) -> dict[str, Warehouse]:
    """The warehouses allocation may choose, once the order is known to be valid."""
    if order.strategy not in STRATEGIES:
        raise InvalidOrderError(
            "unknown_strategy",
            f"unknown strategy {order.strategy!r}: one of {', '.join(STRATEGIES)}")
    if order.strategy == "nearest" and order.ship_to is None:
        raise InvalidOrderError("missing_ship_to", "the nearest strategy needs ship_to")
    listed = tuple(warehouses)
    registry = {w.code: w for w in listed}
    if len(registry) < len(listed):
        raise ValueError("warehouse codes repeat: the registry has one entry per code")
    seen: set[str] = set()
    for line in order.lines:
        name = f"line {line.line_id!r}"
        if line.quantity < 1 or line.line_id in seen:
            raise InvalidOrderError(
                "invalid_line", f"{name}: a quantity below 1 or a line_id used twice")
        seen.add(line.line_id)
        if line.warehouse is None:
            continue
        pin = registry.get(line.warehouse)
        if pin is None:
            raise InvalidOrderError(
                "unknown_warehouse", f"{name} is pinned to {line.warehouse!r}, not registered")
        if not pin.active:
            raise InvalidOrderError(
                "inactive_warehouse", f"{name} is pinned to {pin.code!r}, which is inactive")
    return {code: w for code, w in registry.items() if w.active}


def _preference(order: OrderRequest) -> Callable[[Warehouse], tuple[Any, ...]]:
    """The strategy's order of warehouses before stock is looked at."""
    ship_to = order.ship_to
    if ship_to is None or order.strategy not in ("nearest", "fewest_shipments"):
        return lambda w: (w.priority, w.code)
    return lambda w: ((True, 0.0, w.priority, w.code) if w.location is None
                      else (False, distance_km(ship_to, w.location), w.priority, w.code))


def _ranker(
    order: OrderRequest, excluded: Mapping[str, AbstractSet[str]], ranked: Sequence[str],
    within: AbstractSet[str] | None,
) -> Rank:
    pins = {line.line_id: line.warehouse for line in order.lines}

    def rank(need: Need, free: Mapping[tuple[str, str], int]) -> Sequence[str]:
        pin, banned = pins[need.line_id], excluded.get(need.line_id, frozenset())
        if pin is not None:
            return () if pin in banned else (pin,)
        codes = [c for c in ranked if c not in banned and (within is None or c in within)]
        if order.strategy == "most_available":
            # a stable sort: equal holdings stay in (priority, code) order
            codes.sort(key=lambda c: -free.get((need.sku, c), 0))
        return codes

    return rank


def _fewest(
    order: OrderRequest, active: Mapping[str, Warehouse], stock: Mapping[tuple[str, str], int],
    excluded: Mapping[str, AbstractSet[str]], ranked: Sequence[str], needs: Sequence[Need],
    shipping: frozenset[str],
) -> frozenset[str]:
    forced = shipping | {line.warehouse for line in order.lines if line.warehouse is not None}
    free_lines = [line for line in order.lines if line.warehouse is None]
    candidates = [c for c in ranked if c not in forced and any(
        stock.get((line.sku, c), 0) > 0 and c not in excluded.get(line.line_id, ())
        for line in free_lines)]
    need = Counter[str]()
    for line in needs:
        need[line.sku] += line.quantity
    held: dict[str, Counter[str]] = {}
    for (sku, code), units in stock.items():
        held.setdefault(code, Counter())[sku] += units

    def covers(chosen: frozenset[str]) -> bool:
        served = serve(needs, stock, _ranker(order, excluded, ranked, chosen))
        return all(sum(served[line.line_id].values()) == line.quantity for line in needs)

    return fewest(forced, candidates, need=need, held=held, covers=covers,
                  cost=_set_cost(active, order.ship_to))


def _set_cost(
    active: Mapping[str, Warehouse], ship_to: Location | None,
) -> Callable[[frozenset[str]], tuple[Any, ...]]:
    far = {c: distance_km(ship_to, w.location) for c, w in active.items()
           if ship_to is not None and w.location is not None}

    def cost(chosen: frozenset[str]) -> tuple[Any, ...]:
        codes = tuple(sorted(chosen))
        if ship_to is None:
            return (sum(active[c].priority for c in codes), codes)
        # fsum: the same set gives the same total whatever order its codes come in
        return (sum(c not in far for c in codes), math.fsum(far.get(c, 0.0) for c in codes),
                codes)

    return cost
