"""Properties of allocation over random small orders (hypothesis), checked against models
that enumerate every way to take the units: no flow, no ranking, just brute force."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from itertools import combinations
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.domain.allocation import (
    STRATEGIES,
    Allocation,
    LineRequest,
    OrderRequest,
    Shortfall,
    Strategy,
    allocate,
    distance_km,
)
from stockflow.domain.warehouses import Location, Warehouse
from tests.factories import wh

SKUS = ("A", "B")
Stock = tuple[tuple[tuple[str, str], int], ...]  # sorted ((sku, warehouse), units), hashable


class Case(NamedTuple):
    order: OrderRequest
    warehouses: tuple[Warehouse, ...]
    snapshot: dict[tuple[str, str], int]
    excluded: dict[str, frozenset[str]]

    def run(self, order: OrderRequest | None = None) -> Allocation | Shortfall:
        return allocate(order or self.order, self.warehouses, self.snapshot, self.excluded)

    @property
    def active(self) -> list[str]:
        return [w.code for w in self.warehouses if w.active]

    def served_first(self) -> list[LineRequest]:
        return sorted(self.order.lines, key=lambda line: line.warehouse is None)

    def allowed(self, line: LineRequest, within: Sequence[str] | None = None) -> tuple[str, ...]:
        codes = [line.warehouse] if line.warehouse is not None else self.active
        return tuple(c for c in codes if c not in self.excluded.get(line.line_id, ())
                     and (within is None or c in within))

    def stock(self) -> Stock:
        active = set(self.active)
        return tuple(sorted((key, max(n, 0)) for key, n in self.snapshot.items()
                            if key[1] in active))


# Strategies built once: hypothesis validates every new strategy object, which cost more
# than the drawing when they were built inside `cases`. Few distinct points, so that
# equal distances happen.
LOCATIONS = st.builds(Location, st.integers(-2, 2).map(float), st.integers(-2, 2).map(float))
MAYBE_LOCATED = st.none() | LOCATIONS
PRIORITIES = st.integers(1, 3)
ACTIVE = st.sampled_from([True, True, True, False])
SKU = st.sampled_from(["A", "A", "B"])  # lines of one SKU compete more often
QUANTITIES = st.integers(1, 3)
UNITS = st.integers(-1, 5)
SCARCE = st.integers(-1, 2)  # orders that fall short, where allocatable matters
PLENTY = st.integers(0, 8)  # orders that fit, where the preferences show
PICK = st.integers(0, 5)  # an index into the warehouses, modulo their number
MAYBE_PICK = st.none() | PICK
RARELY_PICK = st.one_of(st.none(), st.none(), st.none(), PICK)
# exclusions are what make lines compete for a warehouse: the case an exact fallback serves
EXCLUSIONS = st.one_of(st.none(), st.lists(PICK, min_size=1, max_size=2))
RARE_EXCLUSIONS = st.one_of(st.none(), st.none(), st.none(), st.lists(PICK, max_size=1))
EXCLUDE_SOME = st.lists(PICK, max_size=2)
STOCKED = st.integers(1, 5)
ANY_STRATEGY = st.sampled_from(STRATEGIES)


@st.composite
def cases(draw: st.DrawFn, *, most_warehouses: int = 4, strategy: Strategy | None = None,
          units: st.SearchStrategy[int] = UNITS,
          pins: st.SearchStrategy[int | None] = MAYBE_PICK,
          exclusions: st.SearchStrategy[list[int] | None] = EXCLUSIONS) -> Case:
    codes = [f"W{i}" for i in range(draw(st.integers(1, most_warehouses)))]
    warehouses = tuple(wh(c, draw(PRIORITIES), draw(ACTIVE), draw(MAYBE_LOCATED))
                       for c in codes)
    active = [w.code for w in warehouses if w.active]
    lines = []
    for i in range(draw(st.integers(1, 4))):
        pin = draw(pins) if active else None
        lines.append(LineRequest(f"L{i}", draw(SKU), draw(QUANTITIES),
                                 None if pin is None else active[pin % len(active)]))
    snapshot = {(sku, c): draw(units) for sku in SKUS for c in [*codes, "GHOST"]}
    excluded = {}
    for ln in lines:
        picks = draw(exclusions)
        if picks is not None:
            excluded[ln.line_id] = frozenset(codes[i % len(codes)] for i in picks)
    chosen = draw(ANY_STRATEGY) if strategy is None else strategy
    ship_to = draw(LOCATIONS if chosen == "nearest" else MAYBE_LOCATED)
    return Case(OrderRequest(tuple(lines), chosen, ship_to), warehouses, snapshot, excluded)


@st.composite
def competing(draw: st.DrawFn) -> Case:
    """Lines of one SKU, each kept from some warehouses: where serving lines in turn
    strands a line that an assignment exists for."""
    codes = [f"W{i}" for i in range(draw(st.integers(2, 4)))]
    warehouses = tuple(wh(c, draw(PRIORITIES), location=draw(MAYBE_LOCATED))
                       for c in codes)
    lines = tuple(LineRequest(f"L{i}", "A", draw(QUANTITIES))
                  for i in range(draw(st.integers(2, 4))))
    excluded = {ln.line_id: frozenset(codes[i % len(codes)] for i in draw(EXCLUDE_SOME))
                for ln in lines}
    snapshot = {("A", c): draw(STOCKED) for c in codes}
    strategy = draw(ANY_STRATEGY)
    ship_to = draw(LOCATIONS if strategy == "nearest" else MAYBE_LOCATED)
    return Case(OrderRequest(lines, strategy, ship_to), warehouses, snapshot, excluded)


def _takes(sku: str, quantity: int, allowed: Sequence[str],
           stock: dict[tuple[str, str], int]) -> Iterator[dict[tuple[str, str], int]]:
    """Every way to take `quantity` units of `sku` from the allowed warehouses."""
    if quantity == 0:
        yield stock
        return
    if not allowed:
        return
    here, rest = (sku, allowed[0]), allowed[1:]
    for n in range(min(quantity, stock.get(here, 0)), -1, -1):
        yield from _takes(sku, quantity - n, rest, {**stock, here: stock.get(here, 0) - n})


def fits(needs: tuple[tuple[str, int, tuple[str, ...]], ...], stock: Stock) -> bool:
    """Whether lines (sku, quantity, allowed warehouses) can all be served in full."""
    @cache
    def from_line(i: int, left: Stock) -> bool:
        if i == len(needs):
            return True
        sku, quantity, allowed = needs[i]
        return any(from_line(i + 1, tuple(sorted(after.items())))
                   for after in _takes(sku, quantity, allowed, dict(left)))
    return from_line(0, stock)


def model_fits(case: Case, quantities: Mapping[str, int] | None = None,
               within: Sequence[str] | None = None) -> bool:
    q = quantities if quantities is not None else {
        ln.line_id: ln.quantity for ln in case.order.lines}
    return fits(tuple((ln.sku, q[ln.line_id], case.allowed(ln, within))
                      for ln in case.order.lines), case.stock())


def placed(result: Allocation | Shortfall) -> dict[str, tuple[tuple[str, int], ...]]:
    assert isinstance(result, Allocation)
    return {ln.line_id: tuple((p.warehouse, p.quantity) for p in ln.parts)
            for ln in result.lines}


@settings(max_examples=300, deadline=None)
@given(cases(most_warehouses=5) | competing())
def test_an_allocation_keeps_to_the_snapshot_and_a_shortfall_means_nothing_fits(
        case: Case) -> None:
    result = case.run()
    assert [ln.line_id for ln in result.lines] == [ln.line_id for ln in case.order.lines]
    assert isinstance(result, Shortfall) == (not model_fits(case))
    # deterministic, whatever order the registry and the snapshot come in
    shuffled = case._replace(warehouses=case.warehouses[::-1],
                             snapshot=dict(reversed(case.snapshot.items())))
    assert result == case.run() == shuffled.run()
    if isinstance(result, Shortfall):
        assert [(s.sku, s.requested) for s in result.lines] == [
            (ln.sku, ln.quantity) for ln in case.order.lines]
        assert all(0 <= s.allocatable <= s.requested for s in result.lines)
        assert any(s.allocatable < s.requested for s in result.lines)
        return
    taken: dict[tuple[str, str], int] = {}
    for asked, got in zip(case.order.lines, result.lines, strict=True):
        assert (got.sku, got.quantity) == (asked.sku, asked.quantity)
        assert sum(p.quantity for p in got.parts) == asked.quantity
        assert all(p.quantity > 0 for p in got.parts)
        assert len({p.warehouse for p in got.parts}) == len(got.parts)  # one part a warehouse
        assert {p.warehouse for p in got.parts} <= set(case.allowed(asked))
        for p in got.parts:
            taken[asked.sku, p.warehouse] = taken.get((asked.sku, p.warehouse), 0) + p.quantity
    assert all(n <= max(case.snapshot.get(key, 0), 0) for key, n in taken.items())


@settings(max_examples=200, deadline=None)
@given(cases(units=SCARCE) | competing(), st.sampled_from(STRATEGIES))
def test_allocatable_is_the_most_each_line_has_after_the_lines_before_it(
        case: Case, strategy: Strategy) -> None:
    result = case.run()
    if not isinstance(result, Shortfall):
        return
    got = {s.line_id: s.allocatable for s in result.lines}
    cut = dict.fromkeys(got, 0)
    for ln in case.served_first():
        cut[ln.line_id] = next(v for v in range(ln.quantity, -1, -1)
                               if model_fits(case, {**cut, ln.line_id: v}))
    assert got == cut
    # the same whatever the strategy
    other = OrderRequest(case.order.lines, strategy, case.order.ship_to or Location(0, 0))
    assert case.run(other) == result
    # and the order cut to what is allocatable is allocated (lines cut to 0 left out)
    lines = tuple(LineRequest(ln.line_id, ln.sku, got[ln.line_id], ln.warehouse)
                  for ln in case.order.lines if got[ln.line_id])
    if lines:
        assert isinstance(case.run(OrderRequest(lines)), Allocation)


def _set_cost(case: Case, chosen: Sequence[str]) -> tuple[Any, ...]:
    """The contract's tie rules, written out again from the module's docstring."""
    by_code = {w.code: w for w in case.warehouses}
    codes = tuple(sorted(chosen))
    ship_to = case.order.ship_to
    if ship_to is None:
        return (sum(by_code[c].priority for c in codes), codes)
    located = [by_code[c].location for c in codes if by_code[c].location is not None]
    return (len(codes) - len(located),
            math.fsum(distance_km(ship_to, loc) for loc in located if loc is not None), codes)


@settings(max_examples=200, deadline=None)
@given(cases(most_warehouses=6, strategy="fewest_shipments"))
def test_fewest_shipments_ships_from_the_fewest_warehouses_and_the_tie_rules_pick_them(
        case: Case) -> None:
    result = case.run()
    if isinstance(result, Shortfall):
        return
    pinned = {ln.warehouse for ln in case.order.lines if ln.warehouse is not None}
    others = [c for c in case.active if c not in pinned]
    best = min((_set_cost(case, [*pinned, *extra]) for size in range(len(others) + 1)
                for extra in combinations(others, size)
                if model_fits(case, within=[*pinned, *extra])),
               key=lambda cost: (len(cost[-1]), cost))[-1]
    assert {p.warehouse for ln in result.lines for p in ln.parts} == set(best)
    # and in that set lines are served as under nearest (with ship_to) or priority
    expected = _plain_greedy(case, within=best)
    if expected is not None:
        assert placed(result) == expected


@settings(max_examples=200, deadline=None)
@given(cases(most_warehouses=6, strategy="fewest_shipments"), st.lists(PICK, max_size=3))
def test_fewest_shipments_adds_the_fewest_warehouses_to_those_it_ships_from(
        case: Case, picks: list[int]) -> None:
    active = case.active
    shipping = frozenset(active[i % len(active)] for i in picks) if active else frozenset()
    result = allocate(case.order, case.warehouses, case.snapshot, case.excluded, shipping)
    if isinstance(result, Shortfall):
        assert not model_fits(case)
        return
    forced = shipping | {ln.warehouse for ln in case.order.lines if ln.warehouse is not None}
    others = [c for c in active if c not in forced]
    fewest_added = min(size for size in range(len(others) + 1)
                       for extra in combinations(others, size)
                       if model_fits(case, within=[*forced, *extra]))
    used = {p.warehouse for ln in result.lines for p in ln.parts}
    assert len(used - forced) == fewest_added


def _plain_greedy(
    case: Case, within: Sequence[str] | None = None,
) -> dict[str, tuple[tuple[str, int], ...]] | None:
    """Each line in turn takes what it can from its warehouses in the strategy's order;
    None when that strands a line."""
    order, by_code = case.order, {w.code: w for w in case.warehouses}
    free = dict(case.stock())
    out = {}
    for ln in case.served_first():
        def key(code: str, sku: str = ln.sku) -> tuple[Any, ...]:
            w = by_code[code]
            if order.strategy == "most_available":
                return (-free.get((sku, code), 0), w.priority, code)
            if order.ship_to is not None and order.strategy in ("nearest", "fewest_shipments"):
                far = math.inf if w.location is None else distance_km(order.ship_to, w.location)
                return (far, w.priority, code)
            return (w.priority, code)
        parts, short = [], ln.quantity
        for code in sorted(case.allowed(ln, within), key=key):
            take = min(short, free.get((ln.sku, code), 0))
            if take:
                parts.append((code, take))
                free[ln.sku, code] -= take
                short -= take
        if short:
            return None
        out[ln.line_id] = tuple(parts)
    return out


@settings(max_examples=200, deadline=None)
@given(st.one_of([cases(strategy=s, units=PLENTY, pins=RARELY_PICK, exclusions=RARE_EXCLUSIONS)
                  for s in ("priority", "most_available", "nearest")]))
def test_the_strategy_decides_whenever_serving_lines_in_turn_suffices(case: Case) -> None:
    expected = _plain_greedy(case)
    if expected is None:
        return
    assert placed(case.run()) == expected
