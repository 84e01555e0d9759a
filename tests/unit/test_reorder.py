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
    Outlook,
    calibrated_multiplier,
    cover_spread,
    demand_over,
    lead_time,
    lost_sales_level,
    safety_spread,
    scoped,
    suggest,
    top_up,
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


def test_a_keys_target_wins_over_its_warehouses_and_both_over_the_default() -> None:
    table = {"WH-2": 0.9, "A@WH-2": 0.99}
    assert scoped("A@WH-2", table, 0.95) == 0.99
    assert scoped("B@WH-2", table, 0.95) == 0.9
    assert scoped("A@WH-1", table, 0.95) == 0.95


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


def outlooks(errors: list[np.ndarray], daily: float = 0.0) -> list[Outlook]:
    """Smooth keys' outlooks with these backtest errors, forecasting `daily` a day."""
    return [Outlook([daily] * 14, "smooth", e, np.zeros(0)) for e in errors]


def test_the_multiplier_is_out_of_sample_and_falls_back_when_few_keys() -> None:
    z = NormalDist().inv_cdf(0.95)
    rng = np.random.default_rng(7)
    few = outlooks([rng.normal(0, 1, size=(4, 14)) for _ in range(3)])
    assert calibrated_multiplier(few, 14, 0.95, review_days=7) == pytest.approx(
        z * SMALL_SAMPLE_MULTIPLIER)
    errors = [rng.normal(0, 1, size=(4, 14)) for _ in range(MIN_CALIBRATION_SUMS)]
    many = outlooks(errors)
    k95, k90 = (calibrated_multiplier(many, 14, level, review_days=7)
                for level in (0.95, 0.90))
    # three windows estimate a spread poorly: the sums they did not see land further out
    # than the normal quantile says, and the multiplier says how much
    assert z < k95 < 3 * z and k90 < k95
    biased = outlooks([e + 0.5 for e in errors])
    assert calibrated_multiplier(biased, 14, 0.95, review_days=7) > k95


def test_the_excess_over_the_normal_quantile_is_scaled_from_three_windows_to_four() -> None:
    # sums over a spread from 3 windows (held out), used with a spread from all 4: the
    # excess that an estimated spread adds shrinks with the windows, first order as 1/n;
    # the quantile is the one that stands for 95% of cycles under lost sales
    rng = np.random.default_rng(11)
    errors = [rng.normal(0, 1, size=(4, 14)) for _ in range(MIN_CALIBRATION_SUMS)]
    many = outlooks(errors)
    ratios = [float(e[j].sum()) / cover_spread(np.delete(e, j, axis=0), 14)
              for e in errors for j in range(4)]
    level = lost_sales_level(many, 14, 0.95, review_days=7)
    z = NormalDist().inv_cdf(level)
    held_out = float(np.quantile(ratios, level))
    assert calibrated_multiplier(many, 14, 0.95, review_days=7) == pytest.approx(
        z + (held_out - z) * 3 / 4)


def test_under_lost_sales_a_cycle_after_a_stock_out_starts_with_what_was_turned_away() -> None:
    # half the keys' forecasts fall 1 a day short, always: every 14-day sum is 14 over,
    # as much as the spread of such sums. Under backorders a level under that spread
    # stocks out every cycle; under lost sales a cycle after a stock-out starts with the
    # units turned away during its lead time (the week before), so only every other one
    # does. The other half are 1 a day over and never stock out. 75% of cycles without a
    # stock-out under lost sales: any level will do, and it covers half the backorder sums
    short, over = np.ones((4, 14)), -np.ones((4, 14))
    assert cover_spread(short, 14) == pytest.approx(14)
    keys = outlooks([short, over] * 20)  # 7 reviews each, the first only seeds losses: 240
    assert lost_sales_level(keys, 14, 0.75, review_days=7) == pytest.approx(0.5)
    # no level with fewer stock-outs than every other cycle: the level covers every sum
    assert lost_sales_level(keys, 14, 0.9, review_days=7) == pytest.approx(0.9)
    # too few cycles to tell: the target itself
    assert lost_sales_level(keys[:2], 14, 0.75, review_days=7) == 0.75


def test_lost_sales_ask_less_of_the_backorder_sums_the_lower_the_target() -> None:
    rng = np.random.default_rng(13)
    walk = outlooks([np.cumsum(rng.normal(0, 1, size=56)).reshape(4, 14) / 4
                     for _ in range(MIN_CALIBRATION_SUMS)])  # errors that move together
    levels = [lost_sales_level(walk, 14, t, review_days=7) for t in (0.8, 0.9, 0.95)]
    assert levels == sorted(levels)
    assert all(level < t for level, t in zip(levels, (0.8, 0.9, 0.95), strict=True))
    assert 0.9 - levels[1] > 0.95 - levels[2]
    with pytest.raises(ValueError, match="review period"):
        lost_sales_level(walk, 14, 0.9, review_days=14)


def test_a_spread_is_never_surer_than_independent_customers() -> None:
    # a timetable forecast exactly by its backtest: no error, yet 25 a day over 14 days
    exact = Outlook([25.0] * 14, "smooth", np.zeros((4, 14)), np.zeros(0))
    assert safety_spread(exact, 14) == pytest.approx(math.sqrt(25 * 14))
    noisy = Outlook([25.0] * 14, "smooth", np.full((4, 14), 3.0), np.zeros(0))
    assert safety_spread(noisy, 14) == pytest.approx(cover_spread(noisy.errors, 14)) == 42
    got = top_up(exact, multiplier=2.0, available=0, in_transit=0)
    assert got.order_up_to == 350 + math.ceil(2 * math.sqrt(350))
    # in the calibration too: each key's last window is 1 a day over, the three before it
    # all but exact; over their own spread its sum would be hundreds of spreads out
    rng = np.random.default_rng(17)
    changed = [np.vstack([rng.normal(0, 0.01, size=(3, 14)), np.ones((1, 14))])
               for _ in range(MIN_CALIBRATION_SUMS)]
    assert 14 / cover_spread(changed[0][:3], 14) > 100
    k = calibrated_multiplier(outlooks(changed, daily=25.0), 14, 0.95, review_days=7)
    assert k < 2 * NormalDist().inv_cdf(0.95)  # 14 over the floor: 0.75 of it


def test_top_up_covers_lead_time_and_review_at_every_review() -> None:
    errors = np.array([[2.0, -2.0] * 7, [-2.0, 2.0] * 7])  # they cancel over whole weeks
    smooth = Outlook([10.0] * 14, "smooth", errors, np.zeros(0))
    got = top_up(smooth, multiplier=2.0, available=50, in_transit=20, on_order=10,
                 lead_time_days=7, review_days=7)
    # errors that cancel leave the floor: 2 x the square root of the 140 expected
    assert (got.order_up_to, got.reorder_point, got.safety_stock) == (164, 164, 24)
    assert (got.position, got.suggested_quantity) == (80, 84)
    assert got.lead_time_demand == 70
    noisy = Outlook([10.0] * 14, "smooth", np.full((4, 14), 1.0), np.zeros(0))
    got = top_up(noisy, multiplier=1.5, available=200, in_transit=0)
    assert got.order_up_to == 140 + math.ceil(1.5 * 14) and got.suggested_quantity == 0


def test_an_intermittent_key_is_topped_up_to_the_quantile_of_its_demand_sums() -> None:
    # a spike of 9 every 10 days: 14-day sums are 9 or 18
    recent = np.array(([0.0] * 9 + [9.0]) * 36)
    slow = Outlook([0.9] * 14, "intermittent", np.zeros((4, 14)), recent)
    got = top_up(slow, multiplier=99.0, available=0, in_transit=0, service_level=0.95)
    assert got.order_up_to == 18 and got.safety_stock == 18 - math.ceil(0.9 * 14)


@given(st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=21),
       st.sampled_from(["smooth", "intermittent"]), st.floats(0, 4), units,
       st.integers(0, 500), st.integers(1, 30), st.integers(1, 14), levels)
def test_top_up_orders_exactly_what_takes_the_position_to_the_level(
        mean: list[float], kind: str, k: float, available: int, in_transit: int,
        lead: int, review: int, level: float) -> None:
    rng = np.random.default_rng(len(mean))
    outlook = Outlook(mean, kind, rng.normal(0, 3, size=(4, 14)),
                      rng.poisson(2, size=365).astype(float))
    got = top_up(outlook, multiplier=k, available=available, in_transit=in_transit,
                 lead_time_days=lead, review_days=review, service_level=level)
    assert got.reorder_point == got.order_up_to >= math.ceil(demand_over(mean, lead + review))
    assert got.suggested_quantity == max(got.order_up_to - available - in_transit, 0)
    assert got.safety_stock == got.order_up_to - math.ceil(demand_over(mean, lead + review))
