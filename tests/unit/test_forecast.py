"""The forecasting core: classes, the baseline, model choice by backtest, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from stockflow.planning.forecast import (
    DEFAULT,
    INTERMITTENT,
    LEVELS,
    SMOOTH,
    SWITCH,
    Kind,
    choose,
    classify,
    forecast_key,
    summarise,
)

WEEK = np.array([3.0, 3, 4, 5, 8, 12, 2])


def weekly(days: int) -> np.ndarray:
    return np.resize(WEEK, days)


def test_classes_follow_the_average_interval_between_demands() -> None:
    assert classify(weekly(120)) == "smooth"
    sparse = np.zeros(120)
    sparse[::3] = 2.0  # demand every third day: interval 3 > 1.32
    assert classify(sparse) == "intermittent"
    assert classify(np.zeros(120)) == "intermittent"


def test_a_repeating_week_is_forecast_exactly_and_its_intervals_are_tight() -> None:
    y = weekly(200)
    got = forecast_key("A@W", y, 14)
    assert got.kind == "smooth" and got.model in SMOOTH
    assert np.allclose(got.mean, np.resize(np.roll(WEEK, -(200 % 7)), 14), atol=1e-6)
    err, total = got.errors[got.model]
    assert err == pytest.approx(0, abs=1e-6) and total == pytest.approx(y[-14:].sum())
    for level in LEVELS:
        low, high = got.intervals[level]
        assert len(low) == len(high) == 14
        assert all(lo <= m + 1e-9 and m <= hi + 1e-9
                   for lo, m, hi in zip(low, got.mean, high, strict=True))
        assert got.covered[level] == (14, 14)
        assert got.pinball[level] == pytest.approx(0, abs=1e-6)  # bounds on the actuals


def test_the_quantile_loss_weighs_a_bound_by_its_quantile() -> None:
    # a repeating week whose held-out window is 1 above it every day: the intervals,
    # from errors of 0, sit on the forecast, so each day the upper bound at quantile q is
    # 1 under the actual (loss q) and the lower bound at 1 - q too (loss 1 - q): 1 a day
    y = weekly(200)
    y[-14:] += 1
    got = forecast_key("A@W", y, 14)
    for level in LEVELS:
        assert got.covered[level] == (0, 14)
        assert got.pinball[level] == pytest.approx(14, abs=1e-3)


def test_the_baseline_is_the_same_weekday_over_the_last_90_days() -> None:
    rng = np.random.default_rng(3)
    y = rng.poisson(5, 150).astype(float)
    got = forecast_key("A@W", y, 7)
    # the baseline's held-out error, recomputed by hand
    origin = 150 - 7
    want = [y[origin - 90:origin][[(d - (origin + j)) % 7 == 0
                                   for d in range(origin - 90, origin)]].mean()
            for j in range(7)]
    err, _ = got.errors["weekday_avg"]
    assert err == pytest.approx(np.abs(y[origin:] - np.array(want)).sum())


def test_a_key_keeps_its_class_default_unless_another_model_is_clearly_better() -> None:
    classes: tuple[tuple[Kind, tuple[str, ...]], ...] = (("smooth", SMOOTH),
                                                          ("intermittent", INTERMITTENT))
    for kind, names in classes:
        default = DEFAULT[kind]
        other = next(n for n in names if n != default)
        slightly = dict.fromkeys(names, 100.0) | {other: 100 * (1 - SWITCH[kind]) + 0.5}
        assert choose(kind, slightly) == default
        clearly = slightly | {other: 100 * (1 - SWITCH[kind]) - 0.5}
        assert choose(kind, clearly) == other
        assert choose(kind, dict.fromkeys(names, 0.0)) == default  # ties keep the default


def test_a_changed_weekly_shape_is_followed_by_a_model_other_than_the_default() -> None:
    y = weekly(300)
    y[200:] = np.resize(WEEK[::-1], 100)  # the busy days move for good
    got = forecast_key("A@W", y, 14)
    assert got.model != DEFAULT["smooth"]  # its year-long profile still holds the old shape
    err, total = got.errors[got.model]
    assert err <= 0.05 * total


def test_profile_ses_follows_a_level_shift_and_is_not_lifted_by_a_promotion() -> None:
    y = weekly(280)
    y[200:] *= 3  # the level triples for good
    y[230:235] *= 3  # a five-day promotion, inside the selection windows
    got = forecast_key("A@W", y, 14)
    assert got.model == "profile_ses"  # seasonal naive trips over the promotion
    err, total = got.errors["profile_ses"]
    base_err, _ = got.errors["weekday_avg"]
    assert err <= 0.05 * total and err < base_err / 2  # the 90-day average still lags
    want = 3 * np.resize(np.roll(WEEK, -(280 % 7)), 14)
    assert np.allclose(got.mean, want, rtol=0.06)


def test_an_intermittent_keys_intervals_are_the_spread_of_its_last_16_weeks() -> None:
    rng = np.random.default_rng(5)
    y = np.where(rng.random(400) < 0.15, rng.integers(1, 6, 400), 0).astype(float)
    got = forecast_key("A@W", y, 14)
    assert got.kind == "intermittent"
    recent = y[-112:]
    for level in LEVELS:
        low, high = got.intervals[level]
        assert len(set(low)) == len(set(high)) == 1  # the same every day
        inside = ((recent >= low[0]) & (recent <= high[0])).mean()
        assert inside >= level / 100  # at least the nominal cover of the days it came from
    assert got.intervals[95][1][0] == pytest.approx(np.sort(recent)[110], abs=1e-3)


def test_intermittent_keys_choose_among_the_intermittent_models() -> None:
    rng = np.random.default_rng(4)
    y = np.where(rng.random(300) < 0.15, rng.integers(1, 5, 300), 0).astype(float)
    got = forecast_key("slow@W", y, 14)
    assert got.kind == "intermittent" and got.model in INTERMITTENT
    assert set(got.errors) == set(INTERMITTENT)
    assert all(v >= 0 for v in got.mean)


def test_a_history_too_short_for_the_backtest_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 70"):
        forecast_key("A@W", weekly(60), 14)


def test_summary_counts_every_key_once() -> None:
    rng = np.random.default_rng(5)
    results = [forecast_key(f"K{i}@W", rng.poisson(3 + i, 120).astype(float), 7)
               for i in range(6)]
    summary = summarise(results)
    assert summary.keys["all"] == 6 == sum(summary.chosen.values())
    assert summary.keys["smooth"] + summary.keys["intermittent"] == 6
    assert set(summary.mase) >= {"weekday_avg", "chosen"}
    assert all(0 <= c <= 1 for c in summary.coverage.values())


def test_the_process_pool_gives_each_key_its_own_forecast() -> None:
    from stockflow.usecases.forecasting import forecast_keys  # noqa: PLC0415

    rng = np.random.default_rng(6)
    # chunks finish out of order on two processes; every fifth key is too short to forecast
    histories = [(f"K{i}@W", rng.poisson(1 + i % 9, 40 if i % 5 == 0 else 100).astype(float))
                 for i in range(230)]
    got = forecast_keys(histories, 7, workers=2)
    assert list(got) != [] and set(got) == {k for k, _ in histories}
    for key, result in got.items():
        short = int(key[1:].partition("@")[0]) % 5 == 0
        if isinstance(result, str):
            assert short and result.startswith(f"{key}:")
        else:
            assert not short and result.key == key
