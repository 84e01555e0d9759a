"""Allocation by strategy, one worked example at a time (the properties are in
test_allocation_properties.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from stockflow.domain import allocation_sets
from stockflow.domain.allocation import (
    EARTH_RADIUS_KM,
    Allocation,
    InvalidOrderError,
    LineRequest,
    LineShort,
    OrderRequest,
    Part,
    Shortfall,
    Snapshot,
    Strategy,
    allocate,
    distance_km,
)
from stockflow.domain.warehouses import Location, Warehouse
from tests.factories import wh

Placed = dict[str, tuple[tuple[str, int], ...]]  # line_id -> ((warehouse, units), ...)

BRUSSELS = Location(50.85, 4.35)
AMSTERDAM = Location(52.37, 4.90)  # about 170 km from Brussels
PARIS = Location(48.86, 2.35)  # about 265 km
BERLIN = Location(52.52, 13.40)  # about 650 km


def stock(**by_sku: Mapping[str, int]) -> Snapshot:
    return {(sku, w): n for sku, held in by_sku.items() for w, n in held.items()}


def line(line_id: str, sku: str, quantity: int, pin: str | None = None) -> LineRequest:
    return LineRequest(line_id, sku, quantity, pin)


def placed(result: Allocation | Shortfall) -> Placed:
    assert isinstance(result, Allocation), result
    return {ln.line_id: tuple((p.warehouse, p.quantity) for p in ln.parts)
            for ln in result.lines}


def allocatable(result: Allocation | Shortfall) -> dict[str, int]:
    assert isinstance(result, Shortfall), result
    return {ln.line_id: ln.allocatable for ln in result.lines}


def run(
    warehouses: list[Warehouse], snapshot: Snapshot, *lines: LineRequest,
    strategy: Strategy = "priority", ship_to: Location | None = None,
    excluded: Mapping[str, frozenset[str]] | None = None,
) -> Allocation | Shortfall:
    return allocate(OrderRequest(lines, strategy, ship_to), warehouses, snapshot, excluded or {})


# Sources as a merchant ranks them for a stock in Magento's priority-based source
# selection: a large warehouse first, then a second one, an overflow store with nothing
# left, and a shop that is switched off. Each item takes what it can from each in turn.
MSI = [wh("BERLIN-DC", 1), wh("LONDON-DC", 2), wh("LONDON-OVERFLOW", 3),
       wh("LONDON-SHOP", 4, active=False)]
MSI_STOCK = stock(TEE={"BERLIN-DC": 3, "LONDON-DC": 10, "LONDON-OVERFLOW": 0,
                       "LONDON-SHOP": 50},
                  CAP={"LONDON-DC": 1, "LONDON-OVERFLOW": 4})


@pytest.mark.parametrize(("lines", "expected"), [
    pytest.param([line("1", "TEE", 2)], {"1": (("BERLIN-DC", 2),)}, id="first-source-suffices"),
    pytest.param([line("1", "TEE", 12)], {"1": (("BERLIN-DC", 3), ("LONDON-DC", 9))},
                 id="fills-the-first-then-the-next"),
    pytest.param([line("1", "TEE", 4), line("2", "CAP", 3)],
                 {"1": (("BERLIN-DC", 3), ("LONDON-DC", 1)),
                  "2": (("LONDON-DC", 1), ("LONDON-OVERFLOW", 2))},
                 id="each-item-down-the-list"),
])
def test_priority_walks_the_sources_as_magento_msi_does(
        lines: list[LineRequest], expected: Placed) -> None:
    assert placed(run(MSI, MSI_STOCK, *lines)) == expected


def test_priority_skips_a_disabled_source_and_the_order_is_short() -> None:
    result = run(MSI, MSI_STOCK, line("1", "TEE", 14), line("2", "CAP", 2))
    assert result == Shortfall((LineShort("1", "TEE", 14, 13), LineShort("2", "CAP", 2, 2)))


W12 = [wh("W1", 1), wh("W2", 2)]


@pytest.mark.parametrize(("warehouses", "snapshot", "lines", "expected"), [
    pytest.param([wh("W-B", 1), wh("W-A", 1)], stock(A={"W-A": 2, "W-B": 2}),
                 [line("1", "A", 3)], {"1": (("W-A", 2), ("W-B", 1))},
                 id="equal-priorities-by-code"),
    pytest.param(W12, stock(A={"W1": 5, "W2": 10}), [line("1", "A", 4), line("2", "A", 4)],
                 {"1": (("W1", 4),), "2": (("W1", 1), ("W2", 3))}, id="lines-share-a-sku"),
    pytest.param(W12, stock(A={"W1": 5, "W2": 5}), [line("1", "A", 3), line("2", "A", 4, "W1")],
                 {"1": (("W1", 1), ("W2", 2)), "2": (("W1", 4),)}, id="pinned-lines-first"),
    pytest.param(W12, stock(A={"W1": 9, "W2": 5}), [line("1", "A", 3, "W2")],
                 {"1": (("W2", 3),)}, id="pinned-line-stays-put"),
    pytest.param(W12, {("A", "W1"): -4, ("A", "W2"): 3, ("A", "GHOST"): 50},
                 [line("1", "A", 3)], {"1": (("W2", 3),)},
                 id="below-zero-and-unregistered-hold-nothing"),
])
def test_priority(warehouses: list[Warehouse], snapshot: Snapshot, lines: list[LineRequest],
                  expected: Placed) -> None:
    assert placed(run(warehouses, snapshot, *lines)) == expected


def test_a_pinned_line_does_not_move_when_its_warehouse_lacks_stock() -> None:
    result = run(W12, stock(A={"W1": 2, "W2": 50}), line("1", "A", 3, "W1"), line("2", "A", 1))
    assert allocatable(result) == {"1": 2, "2": 1}


@pytest.mark.parametrize(("warehouses", "snapshot", "lines", "expected"), [
    pytest.param(W12, stock(A={"W1": 10, "W2": 8}), [line("1", "A", 5), line("2", "A", 5)],
                 {"1": (("W1", 5),), "2": (("W2", 5),)},
                 id="ranks-after-earlier-lines"),
    pytest.param(W12, stock(A={"W1": 10, "W2": 8}), [line("1", "A", 15)],
                 {"1": (("W1", 10), ("W2", 5))}, id="split-most-first"),
    pytest.param([wh("W1", 2), wh("W2", 1)], stock(A={"W1": 6, "W2": 6}),
                 [line("1", "A", 2)], {"1": (("W2", 2),)}, id="equal-holdings-by-priority"),
    pytest.param([wh("W2", 1), wh("W1", 1)], stock(A={"W1": 6, "W2": 6}),
                 [line("1", "A", 2)], {"1": (("W1", 2),)}, id="then-by-code"),
    pytest.param(W12, stock(A={"W1": 1, "W2": 9}, B={"W1": 5, "W2": 1}),
                 [line("1", "A", 2), line("2", "B", 2)], {"1": (("W2", 2),), "2": (("W1", 2),)},
                 id="per-sku"),
])
def test_most_available(warehouses: list[Warehouse], snapshot: Snapshot,
                        lines: list[LineRequest], expected: Placed) -> None:
    assert placed(run(warehouses, snapshot, *lines, strategy="most_available")) == expected


CITIES = [wh("PAR", 1, location=PARIS), wh("AMS", 2, location=AMSTERDAM),
          wh("BER", 3, location=BERLIN), wh("NOWHERE", 0)]


@pytest.mark.parametrize(("snapshot", "expected"), [
    pytest.param(stock(A={"PAR": 9, "AMS": 9, "BER": 9, "NOWHERE": 9}), {"1": (("AMS", 6),)},
                 id="nearest-first"),
    pytest.param(stock(A={"PAR": 5, "AMS": 3}), {"1": (("AMS", 3), ("PAR", 3))},
                 id="split-by-distance"),
    pytest.param(stock(A={"AMS": 1, "BER": 2, "NOWHERE": 9}),
                 {"1": (("AMS", 1), ("BER", 2), ("NOWHERE", 3))}, id="no-location-last"),
])
def test_nearest(snapshot: Snapshot, expected: Placed) -> None:
    result = run(CITIES, snapshot, line("1", "A", 6), strategy="nearest", ship_to=BRUSSELS)
    assert placed(result) == expected


def test_nearest_breaks_equal_distances_by_priority_then_code() -> None:
    same_site = [wh("AMS-2", 2, location=AMSTERDAM),
                 wh("AMS-1", 2, location=AMSTERDAM),
                 wh("AMS-0", 1, location=AMSTERDAM),
                 wh("FAR-1", 9), wh("FAR-0", 9)]
    snapshot = stock(A=dict.fromkeys(["AMS-0", "AMS-1", "AMS-2", "FAR-0", "FAR-1"], 1))
    result = run(same_site, snapshot, line("1", "A", 5), strategy="nearest", ship_to=BRUSSELS)
    assert placed(result) == {"1": (("AMS-0", 1), ("AMS-1", 1), ("AMS-2", 1), ("FAR-0", 1),
                                    ("FAR-1", 1))}


SPREAD = [wh("W1", 1, location=PARIS), wh("W2", 2, location=BERLIN),
          wh("W3", 3, location=BERLIN), wh("W4", 4, location=AMSTERDAM)]


@pytest.mark.parametrize(("snapshot", "lines", "ship_to", "expected"), [
    pytest.param(stock(A={"W1": 5, "W3": 5}, B={"W2": 5, "W3": 5}),
                 [line("1", "A", 2), line("2", "B", 2)], None,
                 {"1": (("W3", 2),), "2": (("W3", 2),)}, id="one-warehouse-beats-priority"),
    pytest.param(stock(A={"W3": 5, "W4": 5}, B={"W3": 5, "W4": 5}),
                 [line("1", "A", 2), line("2", "B", 2)], None,
                 {"1": (("W3", 2),), "2": (("W3", 2),)}, id="ties-lowest-priority-sum"),
    pytest.param(stock(A={"W3": 5, "W4": 5}, B={"W3": 5, "W4": 5}),
                 [line("1", "A", 2), line("2", "B", 2)], BRUSSELS,
                 {"1": (("W4", 2),), "2": (("W4", 2),)}, id="ties-smallest-distance"),
    # only {W1, W4} and {W2, W3} cover, both with priorities summing to 5: the codes
    # decide, ("W1", "W4") before ("W2", "W3")
    pytest.param(stock(X={"W1": 1, "W2": 1}, Y={"W1": 1, "W3": 1}, Z={"W2": 1, "W4": 1},
                       V={"W3": 1, "W4": 1}),
                 [line("1", "X", 1), line("2", "Y", 1), line("3", "Z", 1), line("4", "V", 1)],
                 None, {"1": (("W1", 1),), "2": (("W1", 1),), "3": (("W4", 1),),
                        "4": (("W4", 1),)}, id="then-the-codes"),
    pytest.param(stock(A={"W3": 5}, B={"W1": 5, "W3": 5}),
                 [line("1", "A", 2, "W3"), line("2", "B", 2)], None,
                 {"1": (("W3", 2),), "2": (("W3", 2),)}, id="pinned-warehouse-serves-others"),
    pytest.param(stock(A={"W1": 1, "W3": 4, "W4": 4}, B={"W3": 4, "W4": 4}),
                 [line("1", "A", 6), line("2", "B", 1)], None,
                 {"1": (("W3", 4), ("W4", 2)), "2": (("W3", 1),)}, id="split-by-priority"),
    pytest.param(stock(A={"W1": 1, "W3": 4, "W4": 4}, B={"W3": 4, "W4": 4}),
                 [line("1", "A", 6), line("2", "B", 1)], BRUSSELS,
                 {"1": (("W4", 4), ("W3", 2)), "2": (("W4", 1),)}, id="split-by-distance"),
])
def test_fewest_shipments(snapshot: Snapshot, lines: list[LineRequest],
                          ship_to: Location | None, expected: Placed) -> None:
    result = run(SPREAD, snapshot, *lines, strategy="fewest_shipments", ship_to=ship_to)
    assert placed(result) == expected


def test_fewest_shipments_puts_sets_with_a_warehouse_without_location_last() -> None:
    warehouses = [wh("NEAR", 5, location=AMSTERDAM), wh("UNKNOWN", 1),
                  wh("FAR", 9, location=BERLIN)]
    snapshot = stock(A={"NEAR": 1, "UNKNOWN": 9, "FAR": 9})
    result = run(warehouses, snapshot, line("1", "A", 2), strategy="fewest_shipments",
                 ship_to=BRUSSELS)
    assert placed(result) == {"1": (("FAR", 2),)}


def _cover_trap(fillers: int) -> tuple[list[Warehouse], Snapshot]:
    """WA and WB cover the order together, yet C1 alone serves the most units, then C2,
    then C3: greedy cover takes those three and cannot drop any."""
    held = {"WA": (7, 0), "WB": (0, 7), "C1": (4, 4), "C2": (2, 2), "C3": (1, 1)}
    held |= {f"F{i:02}": (1, 0) for i in range(fillers)}
    warehouses = [wh(code, rank) for rank, code in enumerate(held)]
    snapshot = {(sku, code): n for code, units in held.items()
                for sku, n in zip("AB", units, strict=True)}
    return warehouses, snapshot


@pytest.mark.parametrize(("fillers", "expected"), [
    pytest.param(11, {"1": (("WA", 7),), "2": (("WB", 7),)}, id="16-candidates-exact"),
    pytest.param(12, {"1": (("C1", 4), ("C2", 2), ("C3", 1)),
                      "2": (("C1", 4), ("C2", 2), ("C3", 1))},
                 id="17-candidates-greedy-not-minimal"),
])
def test_fewest_shipments_beyond_16_candidates_falls_back_to_greedy_cover(
        fillers: int, expected: Placed) -> None:
    warehouses, snapshot = _cover_trap(fillers)
    result = run(warehouses, snapshot, line("1", "A", 7), line("2", "B", 7),
                 strategy="fewest_shipments")
    assert placed(result) == expected


@pytest.mark.parametrize(("tries", "expected"), [
    pytest.param(allocation_sets.EXACT_TRIES, {"1": (("WA", 7),), "2": (("WB", 7),),
                                               "3": (("C1", 1),)}, id="exact"),
    pytest.param(1, {"1": (("C1", 4), ("C2", 2), ("C3", 1)),
                     "2": (("C1", 4), ("C2", 2), ("C3", 1)), "3": (("C1", 1),)},
                 id="greedy-once-the-tries-are-spent"),
])
def test_fewest_shipments_gives_up_exactness_when_exclusions_defeat_many_sets(
        monkeypatch: pytest.MonkeyPatch, tries: int, expected: Placed) -> None:
    # {WA, WB} holds units enough, but line 3 may not take WA's unit of C: that set fails
    warehouses, snapshot = _cover_trap(0)
    snapshot = {**snapshot, ("C", "WA"): 1, ("C", "C1"): 1}
    monkeypatch.setattr(allocation_sets, "EXACT_TRIES", tries)
    result = run(warehouses, snapshot, line("1", "A", 7), line("2", "B", 7), line("3", "C", 1),
                 strategy="fewest_shipments", excluded={"3": frozenset({"WA"})})
    assert placed(result) == expected


@pytest.mark.parametrize(("lines", "excluded", "expected"), [
    pytest.param([line("1", "A", 3)], {"1": frozenset({"W1"})}, {"1": (("W2", 3),)},
                 id="skips-a-warehouse-that-rejected-the-line"),
    # greedy gives W1 to line 1 and strands line 2; line 1 moves to W2
    pytest.param([line("1", "A", 5), line("2", "A", 5)], {"2": frozenset({"W2"})},
                 {"1": (("W2", 5),), "2": (("W1", 5),)}, id="moves-an-earlier-line"),
    pytest.param([line("1", "A", 6), line("2", "A", 4)], {"2": frozenset({"W2"})},
                 {"1": (("W1", 1), ("W2", 5)), "2": (("W1", 4),)}, id="moves-part-of-a-line"),
])
def test_exclusions_with_an_exact_fallback(
        lines: list[LineRequest], excluded: dict[str, frozenset[str]], expected: Placed) -> None:
    assert placed(run(W12, stock(A={"W1": 5, "W2": 5}), *lines, excluded=excluded)) == expected


@pytest.mark.parametrize(("lines", "excluded", "expected"), [
    pytest.param([line("1", "A", 4), line("2", "A", 6), line("3", "B", 1)], {},
                 {"1": 4, "2": 5, "3": 1}, id="earlier-lines-first-every-line-listed"),
    pytest.param([line("1", "A", 6), line("2", "A", 4, "W1")], {}, {"1": 5, "2": 4},
                 id="pinned-lines-first"),
    pytest.param([line("1", "A", 3, "W1")], {"1": frozenset({"W1"})}, {"1": 0},
                 id="pinned-line-excluded-from-its-warehouse"),
    # line 1 moves to W2 so that line 2 has all of W1; line 3, kept to W2, gets nothing
    pytest.param([line("1", "A", 3), line("2", "A", 6), line("3", "A", 3)],
                 {"2": frozenset({"W2"}), "3": frozenset({"W1"})}, {"1": 3, "2": 6, "3": 0},
                 id="earlier-lines-may-move"),
])
def test_shortfall_says_what_each_line_could_have(
        lines: list[LineRequest], excluded: dict[str, frozenset[str]],
        expected: dict[str, int]) -> None:
    result = run(W12, stock(A={"W1": 6, "W2": 3}, B={"W2": 1}), *lines, excluded=excluded)
    assert allocatable(result) == expected


@pytest.mark.parametrize(("order", "reason"), [
    pytest.param(OrderRequest((line("1", "A", 1),), "cheapest"),  # type: ignore[arg-type]
                 "unknown_strategy", id="unknown-strategy"),
    pytest.param(OrderRequest((line("1", "A", 1),), "nearest"), "missing_ship_to",
                 id="nearest-without-ship-to"),
    pytest.param(OrderRequest((line("1", "A", 1, "W9"),)), "unknown_warehouse",
                 id="pinned-to-unknown"),
    pytest.param(OrderRequest((line("1", "A", 1, "OFF"),)), "inactive_warehouse",
                 id="pinned-to-inactive"),
    pytest.param(OrderRequest((line("1", "A", 0),)), "invalid_line", id="quantity-0"),
    pytest.param(OrderRequest((line("1", "A", 1), line("1", "B", 1))), "invalid_line",
                 id="line-id-twice"),
])
def test_invalid_orders(order: OrderRequest, reason: str) -> None:
    warehouses = [*W12, wh("OFF", 1, active=False)]
    with pytest.raises(InvalidOrderError) as caught:
        allocate(order, warehouses, stock(A={"W1": 5, "OFF": 5}))
    assert caught.value.reason == reason


def test_a_registry_with_a_code_twice_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="repeat"):
        allocate(OrderRequest((line("1", "A", 1),)), [*W12, wh("W1", 5)], {})


def test_results_are_values_that_compare_by_type() -> None:
    result = run(W12, stock(A={"W1": 1, "W2": 1}), line("1", "A", 2))
    assert isinstance(result, Allocation)
    assert result.lines[0].parts == (Part("W1", 1), Part("W2", 1))
    assert not isinstance(result.lines[0].parts[0], tuple)  # never equal to a bare tuple


@pytest.mark.parametrize(("a", "b", "km"), [
    pytest.param(Location(0, 0), Location(0, 0), 0.0, id="same-point"),
    pytest.param(Location(0, 0), Location(0, 1), EARTH_RADIUS_KM * math.pi / 180,
                 id="a-degree-on-the-equator"),
    pytest.param(Location(90, 0), Location(-90, 0), EARTH_RADIUS_KM * math.pi,
                 id="pole-to-pole"),
    pytest.param(Location(0, 0), Location(0, 180), EARTH_RADIUS_KM * math.pi, id="antipodes"),
    pytest.param(Location(10, 179.5), Location(10, -179.5), 109.5, id="across-the-date-line"),
])
def test_distance_km(a: Location, b: Location, km: float) -> None:
    assert distance_km(a, b) == pytest.approx(km, abs=0.1)
    assert distance_km(b, a) == pytest.approx(distance_km(a, b))


def test_distance_between_cities() -> None:
    assert distance_km(PARIS, Location(51.51, -0.13)) == pytest.approx(343.5, abs=1.0)
    assert distance_km(BRUSSELS, AMSTERDAM) < distance_km(BRUSSELS, PARIS) < distance_km(
        BRUSSELS, BERLIN)
