"""The fewest warehouses that cover a whole order (the `fewest_shipments` strategy).

Warehouses are known here by code and by what they hold: `need` is the units the order
wants of each SKU, `held` what each warehouse has of each. Whether a set really serves
the order (pins and exclusions included) is the caller's `covers(set)`, and `cost(set)`
orders sets of one size by the contract's tie rules.

Up to `EXACT_LIMIT` candidates the search is exact: sets by size, smallest first, and
within a size by cost, so the first that covers is the answer. A set that lacks units of
some SKU in total cannot cover, and the walk over subsets drops every branch that cannot
reach them, so few sets are ever tried. Beyond `EXACT_LIMIT` candidates, or should
`EXACT_TRIES` sets with units enough still fail to cover (only exclusions can do that), a
greedy cover stands in: it adds the candidate that brings the most of what the order
still lacks (units per SKU, counted up to what the order wants; ties: the one preferred
first) until the set covers, then drops, least preferred first, every added warehouse
the others can do without. That set covers the order but may not be the smallest
(Wolsey's bound for greedy submodular cover: at most 1 + ln(u) times as many
warehouses, u the most units one warehouse can bring).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any

__all__ = ["EXACT_LIMIT", "EXACT_TRIES", "fewest"]

EXACT_LIMIT = 16  # 2^16 subsets at most, and far fewer walked
# Each try serves the whole order; a coordinator must not stall on one order whose
# exclusions defeat the count of units.
EXACT_TRIES = 1024
Covers = Callable[[frozenset[str]], bool]


def fewest(
    forced: frozenset[str], candidates: Sequence[str], *, need: Mapping[str, int],
    held: Mapping[str, Mapping[str, int]], covers: Covers,
    cost: Callable[[frozenset[str]], Any],
) -> frozenset[str]:
    """The set to ship from: `forced` (the warehouses of pinned lines) and candidates,
    given most preferred first. The caller has made sure that all of them together cover."""
    if len(candidates) > EXACT_LIMIT:
        return _greedy(forced, candidates, need, held, covers)
    have = Counter[str]()
    for code in forced:
        have.update(held.get(code, {}))
    lacking = [sku for sku, units in need.items() if have[sku] < units]
    gap = [need[sku] - have[sku] for sku in lacking]
    brings = [tuple(held.get(code, {}).get(sku, 0) for sku in lacking) for code in candidates]
    # best[i][j][r]: the most units of SKU j that r candidates from index i on can bring
    best = [[[0, *accumulate(sorted((b[j] for b in brings[i:]), reverse=True))]
             for j in range(len(gap))] for i in range(len(brings) + 1)]
    tries = EXACT_TRIES
    for size in range(len(candidates) + 1):
        sets = [forced | {candidates[i] for i in picked}
                for picked in _enough(brings, best, gap, size)]
        for chosen in sorted(sets, key=cost):
            if covers(chosen):
                return chosen
            tries -= 1
            if not tries:
                return _greedy(forced, candidates, need, held, covers)
    raise ValueError("the candidates do not cover the order")


def _enough(
    brings: Sequence[tuple[int, ...]], best: Sequence[Sequence[Sequence[int]]],
    gap: Sequence[int], size: int,
) -> Iterator[tuple[int, ...]]:
    """The sets of `size` candidates (by index) that bring at least `gap` of every SKU;
    a branch that cannot, even with the best of the candidates left, is dropped."""
    n = len(brings)

    def walk(i: int, picked: tuple[int, ...], got: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        left = size - len(picked)
        if n - i < left or any(g + best[i][j][left] < want
                               for j, (g, want) in enumerate(zip(got, gap, strict=True))):
            return
        if left == 0:
            yield picked
            return
        yield from walk(i + 1, (*picked, i), tuple(map(sum, zip(got, brings[i], strict=True))))
        yield from walk(i + 1, picked, got)

    return walk(0, (), (0,) * len(gap))


def _greedy(
    forced: frozenset[str], candidates: Sequence[str], need: Mapping[str, int],
    held: Mapping[str, Mapping[str, int]], covers: Covers,
) -> frozenset[str]:
    chosen, rest, have = forced, list(candidates), Counter[str]()
    for code in forced:
        have.update(held.get(code, {}))

    def brought(code: str) -> int:
        units = held.get(code, {})
        return sum(min(want, have[sku] + units.get(sku, 0)) for sku, want in need.items())

    while not covers(chosen):
        if not rest:
            raise ValueError("the candidates do not cover the order")
        best = max(rest, key=brought)  # max keeps the first of equals: the preferred one
        chosen = chosen | {best}
        have.update(held.get(best, {}))
        rest.remove(best)
    for extra in reversed(candidates):
        if extra in chosen and covers(chosen - {extra}):
            chosen = chosen - {extra}
    return chosen
