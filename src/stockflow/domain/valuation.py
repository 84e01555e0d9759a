"""Perpetual weighted-average cost: what a key's units are worth, in Decimal.

A receipt that carries a unit cost re-averages the key: the units held keep their value
and the received units add theirs at the price paid. Every other movement leaves the
average alone and moves units at it. The average is kept to `PLACES` (six decimals,
rounded half to even); a movement's value, units times a cost of six decimals, is exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

__all__ = ["PLACES", "averaged", "moved"]

PLACES = Decimal("0.000001")
# Wide enough that no product or sum of bigint units and 12-digit costs is ever rounded;
# a context of its own, so the thread's decimal context cannot change the results.
_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)


def averaged(held: int, average: Decimal | None, received: int, paid: Decimal) -> Decimal:
    """The average unit cost once `received` units bought at `paid` join `held` units at
    `average`. With nothing held (or oversold), or no cost known yet, it is what was paid."""
    if average is None or held <= 0:
        return paid.quantize(PLACES, context=_EXACT)
    total = _EXACT.add(_EXACT.multiply(held, average), _EXACT.multiply(received, paid))
    return _EXACT.divide(total, held + received).quantize(PLACES, context=_EXACT)


def moved(units: int, cost: Decimal) -> Decimal:
    """The value of `units` (negative: going out) at `cost` each (of at most six
    decimals), exactly, to six decimals."""
    return _EXACT.multiply(units, cost).quantize(PLACES, context=_EXACT)
