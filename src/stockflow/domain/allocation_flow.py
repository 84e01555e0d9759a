"""Serving order lines from stock, exactly: the engine under every allocation strategy.

Each line first takes what it can from its warehouses in its own order of preference (the
strategy's). Only when that falls short are units of earlier lines of the same SKU moved
to other warehouses those lines may use, one shortest augmenting path at a time (the
Edmonds-Karp step of a max-flow over lines x warehouses): greedy in request order can
strand a line whose only warehouse an earlier line took, although an assignment exists.

A moved line keeps its total, so each line ends with the most it can have without taking
from the lines served before it, and the whole order is served exactly when some
assignment that respects every line's warehouses exists. Plain codes and units only, so
the strategies and the search for the fewest warehouses share it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

__all__ = ["Need", "Rank", "serve"]

StockKey = tuple[str, str]  # (sku, warehouse)


class Need(NamedTuple):
    """Units of a SKU a line still needs."""

    line_id: str
    sku: str
    quantity: int


# The warehouses a line may use, most preferred first, given the units still free.
Rank = Callable[[Need, Mapping[StockKey, int]], Sequence[str]]


def serve(
    needs: Iterable[Need], stock: Mapping[StockKey, int], rank: Rank,
) -> dict[str, dict[str, int]]:
    """Units per warehouse for each line (none of 0), lines served in the order given.

    A stock figure below 0 counts as 0. The totals are the lexicographically greatest
    that the stock allows in that order, whatever the preferences, so they say what each
    line could get when the order cannot be served in full."""
    free = {key: max(units, 0) for key, units in stock.items()}
    held: dict[str, dict[str, int]] = {}
    options: dict[str, Sequence[str]] = {}
    by_sku: dict[str, list[str]] = {}
    for need in needs:
        order = options[need.line_id] = tuple(rank(need, free))
        parts = held[need.line_id] = {}
        by_sku.setdefault(need.sku, []).append(need.line_id)
        short = need.quantity
        for warehouse in order:
            take = min(short, free.get((need.sku, warehouse), 0))
            if take > 0:
                parts[warehouse] = take
                free[need.sku, warehouse] -= take
                short -= take
        while short > 0 and (
                moved := _augment(need, short, by_sku[need.sku], options, held, free)):
            short -= moved
    return {line: {w: n for w, n in parts.items() if n > 0} for line, parts in held.items()}


def _augment(
    need: Need, short: int, lines: Sequence[str], options: Mapping[str, Sequence[str]],
    held: dict[str, dict[str, int]], free: dict[StockKey, int],
) -> int:
    """Finds a shortest path from `need` to a warehouse with free units, through lines
    that can give up units at one warehouse for another, and moves units along it.
    Returns the units `need` gained (0: no path, it has all it can get)."""
    reached: dict[str, str] = {}  # warehouse -> the line that reached it
    entered: dict[str, str | None] = {need.line_id: None}  # line -> warehouse it gives up
    queue = deque([need.line_id])
    while queue:
        line = queue.popleft()
        for warehouse in options[line]:
            if warehouse in reached:
                continue
            reached[warehouse] = line
            if free.get((need.sku, warehouse), 0) > 0:
                return _shift(need, short, warehouse, reached, entered, held, free)
            for other in lines:
                if other not in entered and held[other].get(warehouse, 0) > 0:
                    entered[other] = warehouse
                    queue.append(other)
    return 0


def _shift(
    need: Need, short: int, end: str, reached: Mapping[str, str],
    entered: Mapping[str, str | None], held: dict[str, dict[str, int]],
    free: dict[StockKey, int],
) -> int:
    steps: list[tuple[str, str, str | None]] = []  # (line, gains at, gives up at)
    warehouse: str | None = end
    while warehouse is not None:
        line = reached[warehouse]
        steps.append((line, warehouse, entered[line]))
        warehouse = entered[line]
    units = min([short, free[need.sku, end]]
                + [held[line][lost] for line, _, lost in steps if lost is not None])
    for line, gained, lost in steps:
        held[line][gained] = held[line].get(gained, 0) + units
        if lost is not None:
            held[line][lost] -= units
    free[need.sku, end] -= units
    return units
