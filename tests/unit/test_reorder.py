"""Reorder suggestions: safety stock, reorder point and quantity, against their invariants
and a worked example."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow.planning.reorder import (
    MIN_CALIBRATION_SUMS,
    SMALL_SAMPLE_MULTIPLIER,
    calibrated_multiplier,
    cover_spread,
    demand_over,
    lead_time,
    suggest,
)

means = st.lists(st.floats(0, 500, allow_nan=False), min_size=1, max_size=28)
spreads = st.floats(0, 100, allow_nan=False)
levels = st.floats(0.5, 0.999)
units = st.integers(-1000, 10_000)


def test_a_worked_example() -> None:
    # 10 a day, error 4 a day, 9 days' lead time, weekly review, 95%: z = 1.6449
    got = suggest([10.0] * 14, 4.0, available=50, in_transit=20, lead_time_days=9)
    assert got.lead_time_demand == 90
    assert got.safety_stock == math.ceil(1.6449 * 4 * 3) == 20
    assert got.reorder_point == 110
    assert got.order_up_to == math.ceil(160 + 1.6449 * 4 * 4)  # 16 days' cover = 187
    assert (got.position, got.suggested_quantity) == (70, 187 - 70)
    above = suggest([10.0] * 14, 4.0, available=111, in_transit=0, lead_time_days=9)
    assert above.suggested_quantity == 0


def test_beyond_the_horizon_the_last_week_repeats() -> None:
    week = [1.0, 2, 3, 4, 5, 6, 7]
    assert demand_over(week * 2, 14) == 56
    assert demand_over(week * 2, 17) == 56 + 1 + 2 + 3
    assert demand_over([2.0, 4.0], 5) == 2 + 4 + 2 + 4 + 2


@given(means, spreads, units, st.integers(0, 1000), st.integers(1, 60), st.integers(1, 30),
       levels)
def test_invariants(mean: list[float], spread: float, available: int, in_transit: int,
                    lead: int, review: int, level: float) -> None:
    got = suggest(mean, spread, available=available, in_transit=in_transit,
                  lead_time_days=lead, review_days=review, service_level=level)
    assert got.safety_stock >= 0 and got.suggested_quantity >= 0
    assert got.reorder_point == math.ceil(got.lead_time_demand) + got.safety_stock
    assert got.order_up_to >= got.reorder_point
    if got.position <= got.reorder_point:  # an order brings the position up to the level
        assert got.position + got.suggested_quantity == got.order_up_to
    else:
        assert got.suggested_quantity == 0
    # more certainty costs stock, never less
    higher = suggest(mean, spread, available=available, in_transit=in_transit,
                     lead_time_days=lead, review_days=review,
                     service_level=min(0.999, level + 0.04))
    assert higher.safety_stock >= got.safety_stock
    assert higher.reorder_point >= got.reorder_point


@pytest.mark.parametrize(("level", "lead", "review"), [(0.4, 7, 7), (1.0, 7, 7), (0.95, 0, 7),
                                                       (0.95, 7, 0)])
def test_impossible_settings_are_refused(level: float, lead: int, review: int) -> None:
    with pytest.raises(ValueError, match=r"service level|at least a day"):
        suggest([1.0], 1.0, available=0, in_transit=0, lead_time_days=lead,
                review_days=review, service_level=level)


def test_a_keys_lead_time_wins_over_its_warehouses() -> None:
    table = {"WH-1": 3, "A@WH-1": 12}
    assert lead_time("A@WH-1", table) == 12
    assert lead_time("B@WH-1", table) == 3
    assert lead_time("B@WH-2", table) == 7
    assert lead_time("B@WH-2", table, default=5) == 5


def test_errors_that_move_together_add_up_by_the_day_not_its_square_root() -> None:
    together = np.array([[1.0] * 14, [-1.0] * 14])
    assert cover_spread(together, 14) == pytest.approx(14)  # the sum is 14 days' error
    alternating = np.array([[1.0, -1.0] * 7, [-1.0, 1.0] * 7])
    assert cover_spread(alternating, 14) == pytest.approx(0, abs=1e-9)  # they cancel
    noise = np.random.default_rng(1).normal(0, 2, size=(400, 14))
    assert cover_spread(noise, 9) == pytest.approx(2 * math.sqrt(9), rel=0.05)
    assert cover_spread(np.zeros((4, 14)), 14) == 0
    # a bias is an error too: moments about 0
    assert cover_spread(np.full((4, 14), 3.0), 4) == pytest.approx(12)


def test_the_multiplier_is_out_of_sample_and_falls_back_when_few_keys() -> None:
    z = NormalDist().inv_cdf(0.95)
    rng = np.random.default_rng(7)
    few = [rng.normal(0, 1, size=(4, 14)) for _ in range(3)]
    assert calibrated_multiplier(few, 14, 0.95) == pytest.approx(z * SMALL_SAMPLE_MULTIPLIER)
    many = [rng.normal(0, 1, size=(4, 14)) for _ in range(MIN_CALIBRATION_SUMS)]
    k95, k90 = (calibrated_multiplier(many, 14, level) for level in (0.95, 0.90))
    # three windows estimate a spread poorly: the sums they did not see land further out
    # than the normal quantile says, and the multiplier says how much
    assert z < k95 < 3 * z and k90 < k95
    biased = [e + 0.5 for e in many]
    assert calibrated_multiplier(biased, 14, 0.95) > k95
