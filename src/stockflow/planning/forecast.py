"""Per-key demand forecasts, the model chosen by a rolling-origin backtest.

A key's history is its daily demand (units shipped plus demand turned away) from its
first demand on. Keys whose demand, over their last 16 weeks, comes on fewer than one day
in 1.32 on average (Syntetos and Boylan's cut-off for the average inter-demand interval)
are **intermittent**; the rest are **smooth**. Each
class has its candidates, all but the baseline from statsforecast:

- `weekday_avg`, the baseline stockflow started with: the average of the same weekday
  over the last 90 days (both classes);
- smooth: `seasonal_naive` (the same weekday a week before), `auto_ets` (additive
  errors and weekly seasonality, no trend; its parameters are estimated once per key, at
  the first backtest origin, on the 16 weeks before it, then reused at the later origins
  and for the forecast: a fixed-parameter rolling origin, which keeps 10,000 keys within
  two minutes on two cores) and `profile_ses` (see `_profile_ses`: a weekly profile times
  a smoothed level, promotion spikes taken out before smoothing);
- intermittent: `croston_sba`, `tsb` and `adida`.

The backtest forecasts `horizon` days from each of `ORIGINS` origins, one horizon apart,
ending where the history ends. A key keeps its class's default (`DEFAULT`: `profile_ses`
for smooth keys, `adida` for intermittent ones, the best of each class over all keys'
backtests) unless another candidate's absolute error over all but the last window is
less by at least the class's `SWITCH`: three windows of one key are little evidence, and
choosing the least error among four candidates on them picked noise (measured on the
backfill: 3,000 keys, three seeds; the plain least-error choice cost smooth keys 1.4 to
3.5 points of MASE against always keeping `profile_ses`). A smooth key needs half the
error to switch: what a buyer pays for is stock, and on real demand a smooth key that
switched for 15% less error held more stock at the same service, not less (Chicago's
stations: 3-4% more than the seed's method at 90-98% with 15%, 3-4% less with half;
New York's flights: 5-12% less with 15%, 6-16% less with half; the generator: 15% less
either way, `bench/policy.py`). A key whose weekly shape changed for good still leaves
the year-long profile: there the default's error is many times another's. The last
window is held out, so the figures of the chosen models are not flattered by the choice.
MASE divides a key's mean absolute error by the in-sample error of the seasonal naive
before the first origin (keys without any such error are left out of MASE); WAPE is total
absolute error over total demand.

Prediction intervals are split conformal, at the finite-sample ranks (n errors give at
least the nominal cover), held at zero from below: for a smooth key the chosen model's
backtest errors around its forecast; for an intermittent key the spread of its daily
demand over the 16 weeks before the forecast, the same every day. Their coverage is
measured honestly: intervals made before the held-out window (from the selection
windows' errors, or the 16 weeks before it), checked on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from stockflow.planning.reorder import RECENT_DEMAND_DAYS, Outlook

__all__ = ["DEFAULT", "INTERMITTENT", "LEVELS", "MODELS", "ORIGINS", "SMOOTH", "SWITCH",
           "Backtest", "KeyForecast", "Kind", "choose", "classify", "forecast_key",
           "forecast_many", "forecast_with", "needed", "summarise"]

Series = npt.NDArray[np.float64]
Kind = Literal["smooth", "intermittent"]

ORIGINS = 4  # backtest windows: all but the last choose, the last is held out
LEVELS = (80, 95)  # prediction intervals, percent
BASELINE = "weekday_avg"
SMOOTH = (BASELINE, "seasonal_naive", "auto_ets", "profile_ses")
INTERMITTENT = (BASELINE, "croston_sba", "tsb", "adida")
MODELS = tuple(dict.fromkeys(SMOOTH + INTERMITTENT))
DEFAULT: dict[Kind, str] = {"smooth": "profile_ses", "intermittent": "adida"}
# how much less backtest error another candidate needs to replace the class's default
SWITCH: dict[Kind, float] = {"smooth": 0.5, "intermittent": 0.15}
_ADI_CUT = 1.32
_DECIMALS = 3  # of the forecasts and intervals reported
_WEEK = 7
_BASELINE_DAYS = 90
_RECENT_DAYS = 16 * _WEEK  # what a key's class, AutoETS's fit and an intermittent spread read
_PROFILE_DAYS = 52 * _WEEK
_SPIKE_WINDOW = 15  # days of the running median a promotion spike is measured against
_ALPHAS = np.array([0.03, 0.05, 0.1, 0.2, 0.3])  # the level's smoothing, fitted per call
_ALPHA_BURN_IN = 4 * _WEEK  # one-step errors before this are the start-up's, not alpha's


def classify(y: Series) -> Kind:
    """Intermittent when demand comes on fewer than one day in 1.32 on average."""
    days = int(np.count_nonzero(y))
    return "intermittent" if days == 0 or len(y) / days > _ADI_CUT else "smooth"


def _weekday_avg(y: Series, h: int) -> Series:
    start = max(0, len(y) - _BASELINE_DAYS)
    recent, days = y[start:], np.arange(start, len(y))
    out = np.zeros(h)
    for j in range(h):
        same = recent[(days - (len(y) + j)) % _WEEK == 0]  # day len(y) + j's weekday
        if len(same):
            out[j] = same.mean()
    return out


def _seasonal_naive(y: Series, h: int) -> Series:
    if len(y) < _WEEK:
        return np.full(h, y.mean() if len(y) else 0.0)
    return np.resize(y[-_WEEK:], h)


def _profile_ses(y: Series, h: int) -> Series:
    """Weekly profile times level. The profile is each weekday's share of demand over the
    last year; the level is simple exponential smoothing of the deseasonalised demand, its
    smoothing the one of `_ALPHAS` with the least one-step absolute error, after days far
    above the running median of the fortnight before them (promotions, which the history
    cannot foresee and which would otherwise lift the level for weeks) are replaced by that
    median. Measured on the backfill's smooth keys it is about 13% better in MASE than the
    baseline, whose 90-day weekday average lags level shifts, launches and phase-outs and
    carries each promotion for three months."""
    from scipy.signal import lfilter  # noqa: PLC0415 - heavy import

    w = y[-_PROFILE_DAYS:]
    mean = float(w.mean()) if len(w) else 0.0
    if mean <= 0:
        return np.zeros(h)
    weekday = np.arange(len(y) - len(w), len(y)) % _WEEK
    counts = np.bincount(weekday, minlength=_WEEK)
    sums = np.bincount(weekday, weights=w, minlength=_WEEK)
    profile = np.maximum(np.where(counts > 0, sums / np.maximum(counts, 1) / mean, 1.0), 1e-3)
    z = w / profile[weekday]
    padded = np.pad(z, (_SPIKE_WINDOW - 1, 0), mode="edge")
    median = np.median(np.lib.stride_tricks.sliding_window_view(padded, _SPIKE_WINDOW), axis=1)
    z = np.where(z > 1.5 * median + 3 * np.sqrt(np.maximum(median, 1.0)), median, z)
    start = float(z[:2 * _WEEK].mean())
    best, level = np.inf, start
    for a in _ALPHAS:
        levels = lfilter([a], [1.0, a - 1.0], z, zi=[(1.0 - a) * start])[0]
        error = float(np.abs(z[_ALPHA_BURN_IN:] - levels[_ALPHA_BURN_IN - 1:-1]).sum())
        if error < best:
            best, level = error, float(levels[-1])
    return level * profile[np.arange(len(y), len(y) + h) % _WEEK]


Predictor = Callable[[Series, int], Series]


def _statsforecast(name: str) -> Predictor:
    from statsforecast.models import ADIDA, TSB, CrostonSBA  # noqa: PLC0415 - heavy import

    model: Any = (CrostonSBA() if name == "croston_sba"
                  else TSB(alpha_d=0.1, alpha_p=0.1) if name == "tsb" else ADIDA())

    def predict(y: Series, h: int) -> Series:
        return np.asarray(model.forecast(y=y, h=h)["mean"], dtype=np.float64)

    return predict


class _Ets:
    """AutoETS with its parameters estimated once (see the module's docstring)."""

    def __init__(self, train: Series) -> None:
        from statsforecast.models import AutoETS  # noqa: PLC0415 - heavy import

        self.model: Any = AutoETS(season_length=_WEEK, model="ANA")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(train[-_RECENT_DAYS:])

    def __call__(self, y: Series, h: int) -> Series:
        # forward() starts from the fitted initial states: give it a window as long as the
        # one it was fitted on (from the whole history it forecast a third worse, measured)
        return np.asarray(self.model.forward(y=y[-_RECENT_DAYS:], h=h)["mean"],
                          dtype=np.float64)


@dataclass
class KeyForecast:
    """One key's forecast: the chosen model, the mean and intervals per day, and the
    backtest's errors."""

    key: str
    kind: Kind
    model: str  # the chosen one
    mean: list[float]  # the forecast, a value per day
    intervals: dict[int, tuple[list[float], list[float]]]  # level -> (low, high) per day
    errors: dict[str, tuple[float, float]]  # model -> (sum |error|, sum demand), held out
    scale: float  # the MASE denominator; 0: none
    covered: dict[int, tuple[int, int]]  # level -> (actuals inside, actuals), held out
    # level -> the quantile (pinball) loss of the interval's two bounds, summed over the
    # held-out window: how far outside, and how wide, weighed as their quantiles weigh it
    pinball: dict[int, float]
    spread: float  # standard deviation of the chosen model's daily backtest errors
    # what a reorder level must cover (`reorder.top_up`): the forecast, the class, the
    # chosen model's backtest errors and the recent demand
    outlook: Outlook

    def mase(self, error: float) -> float | None:
        """MASE of `error`, a total absolute error over the held-out window (as long as
        the forecast); None for a key without a scale."""
        return error / len(self.mean) / self.scale if self.scale > 0 else None


def _predictor(name: str, train: Series) -> Predictor:
    """Model `name`; AutoETS estimates its parameters on `train`."""
    if name == BASELINE:
        return _weekday_avg
    if name == "seasonal_naive":
        return _seasonal_naive
    if name == "auto_ets":
        return _Ets(train)
    if name == "profile_ses":
        return _profile_ses
    return _statsforecast(name)


def _interval(forecast: Series, residuals: Series, level: int) -> tuple[Series, Series]:
    """Split conformal: the residuals' order statistics at the finite-sample ranks, so that
    n residuals give at least `level`% cover (the plain quantiles cover less)."""
    n = len(residuals)
    if not n:
        return np.maximum(forecast, 0.0), np.maximum(forecast, 0.0)
    ordered = np.sort(residuals)
    tail = (100 - level) / 200
    low = ordered[max(0, int(np.floor((n + 1) * tail)) - 1)]
    high = ordered[min(n, int(np.ceil((n + 1) * (1 - tail)))) - 1]
    return np.maximum(forecast + low, 0.0), np.maximum(forecast + high, 0.0)


def _intervals(kind: Kind, y: Series, origin: int, forecast: Series,
               backtest: list[Series]) -> dict[int, tuple[Series, Series]]:
    """Level -> (low, high) per day of `forecast`, made from `origin`: around a smooth key's
    forecast, its backtest errors; for an intermittent key, the spread of its daily demand
    over the 16 weeks before, the same every day (its demand hardly depends on the day, and
    16 weeks hold far more of its rare spikes than the backtest windows do)."""
    if kind == "smooth":
        center, residuals = forecast, np.concatenate(backtest)
    else:
        level = float(forecast.mean())
        center = np.full(len(forecast), level)
        residuals = y[max(0, origin - _RECENT_DAYS):origin] - level
    return {lv: _interval(center, residuals, lv) for lv in LEVELS}


def _pinball(actual: Series, bound: Series, quantile: float) -> float:
    """The quantile loss of `bound` as the `quantile` of `actual`, summed over the days."""
    under = actual - bound
    return float(np.where(under >= 0, quantile * under, (quantile - 1) * under).sum())


def needed(horizon: int) -> int:
    """Days of history, from a key's first demand, that a forecast needs."""
    return ORIGINS * horizon + 2 * _WEEK


def choose(kind: Kind, errors: dict[str, float]) -> str:
    """The class's default, unless a candidate's selection error is the class's `SWITCH`
    less."""
    default = DEFAULT[kind]
    best = min(errors, key=lambda n: (errors[n], n != default))
    return best if errors[best] < (1 - SWITCH[kind]) * errors[default] else default


def forecast_key(key: str, y: Series, horizon: int) -> KeyForecast:
    """Backtest the key's candidates on `y` (daily demand, oldest first), choose one and
    forecast `horizon` days after the history. The days before the key's first demand
    are not its history (it was not sold yet); its class is that of its last 16 weeks."""
    y, origins = _backtested(key, y, horizon)
    kind = classify(y[-_RECENT_DAYS:])
    names = SMOOTH if kind == "smooth" else INTERMITTENT
    first = origins[0]
    train = y[:first]
    predictors = {n: _predictor(n, train) for n in names}
    residuals = {n: [y[o:o + horizon] - predictors[n](y[:o], horizon) for o in origins]
                 for n in names}
    held = {n: float(np.abs(r[-1]).sum()) for n, r in residuals.items()}
    chosen = choose(kind, {n: float(np.abs(np.concatenate(r[:-1])).sum())
                            for n, r in residuals.items()})
    scale = float(np.abs(train[_WEEK:] - train[:-_WEEK]).mean()) if first > _WEEK else 0.0
    actual = y[origins[-1]:]
    total = float(actual.sum())
    own = residuals[chosen]
    held_forecast = actual - own[-1]
    covered, pinball = {}, {}
    for level, bounds in _intervals(kind, y, origins[-1], held_forecast, own[:-1]).items():
        # as reported: exact forecasts' bounds are off by float noise, not by a unit
        low, high = (b.round(_DECIMALS) for b in bounds)
        covered[level] = (int(((actual >= low) & (actual <= high)).sum()), len(actual))
        tail = (100 - level) / 200
        pinball[level] = _pinball(actual, low, tail) + _pinball(actual, high, 1 - tail)
    mean = np.maximum(predictors[chosen](y, horizon), 0.0)
    everything = np.concatenate(own)
    intervals = {lv: (low.round(_DECIMALS).tolist(), high.round(_DECIMALS).tolist())
                 for lv, (low, high) in _intervals(kind, y, len(y), mean, own).items()}
    rounded = mean.round(_DECIMALS).tolist()
    return KeyForecast(key, kind, chosen, rounded, intervals,
                       {n: (held[n], total) for n in names}, scale, covered, pinball,
                       float(everything.std()),
                       Outlook(rounded, kind, np.array(own), y[-RECENT_DEMAND_DAYS:].copy()))


def forecast_with(name: str, y: Series, horizon: int) -> tuple[Series, Series]:
    """Model `name`'s forecast of `horizon` days after `y`, and its errors at the
    backtest's origins (a row per origin, actual minus forecast, a value per day): what
    `forecast_key` computes for the model it chooses, for any candidate (a benchmark
    compares policies built on each)."""
    y, origins = _backtested(name, y, horizon)
    predictor = _predictor(name, y[:origins[0]])
    errors = np.array([y[o:o + horizon] - predictor(y[:o], horizon) for o in origins])
    return np.maximum(predictor(y, horizon), 0.0), errors


def _backtested(key: str, y: Series, horizon: int) -> tuple[Series, list[int]]:
    """A key's history from its first demand on (the days before it, it was not sold yet)
    and the backtest's origins in it; ValueError when it is too short for them."""
    y = y[int(np.argmax(y > 0)) if y.any() else len(y):]
    origins = [len(y) - horizon * (ORIGINS - i) for i in range(ORIGINS)]
    if origins[0] < 2 * _WEEK:
        raise ValueError(f"{key}: {len(y)} days since its first demand; a backtest of "
                         f"{ORIGINS} x {horizon} days needs {needed(horizon)}")
    return y, origins


def forecast_many(histories: Sequence[tuple[str, Series]],
                  horizon: int) -> list[KeyForecast | str]:
    """`forecast_key` for each (key, history); for a key it cannot forecast, the reason.
    A module-level function, so a process pool can run it on a share of the keys."""
    out: list[KeyForecast | str] = []
    for key, y in histories:
        try:
            out.append(forecast_key(key, y, horizon))
        except ValueError as exc:
            out.append(str(exc))
    return out


@dataclass
class Backtest:
    """Held-out figures per model and class; `chosen` is the models the keys chose."""

    mase: dict[str, dict[str, float]]  # model -> class ("smooth", "intermittent", "all")
    wape: dict[str, dict[str, float]]
    keys: dict[str, int]  # class -> keys
    chosen: dict[str, int]  # model -> keys that chose it
    coverage: dict[int, float]  # level -> share of held-out actuals inside

    def versus_baseline(self) -> dict[str, float]:
        """Class -> the chosen models' MASE relative to the baseline's (-0.1: 10% less)."""
        base, chosen = self.mase.get(BASELINE, {}), self.mase.get("chosen", {})
        return {c: chosen[c] / base[c] - 1 for c in chosen if base.get(c)}


def summarise(results: Sequence[KeyForecast]) -> Backtest:
    """Aggregate MASE (mean of the keys'), WAPE, choices and coverage over `results`."""
    classes = ("smooth", "intermittent", "all")
    mase_parts: dict[str, dict[str, list[float]]] = {}
    wape_parts: dict[str, dict[str, list[float]]] = {}
    for r in results:
        rows = {**r.errors, "chosen": r.errors[r.model]}
        for name, (err, total) in rows.items():
            value = r.mase(err)
            for cls in (r.kind, "all"):
                if value is not None:
                    mase_parts.setdefault(name, {}).setdefault(cls, []).append(value)
                w = wape_parts.setdefault(name, {}).setdefault(cls, [0.0, 0.0])
                w[0] += err
                w[1] += total
    mase = {n: {c: float(np.mean(v)) for c, v in parts.items()}
            for n, parts in mase_parts.items()}
    wape = {n: {c: v[0] / v[1] for c, v in parts.items() if v[1] > 0}
            for n, parts in wape_parts.items()}
    keys = {c: sum(1 for r in results if c in (r.kind, "all")) for c in classes}
    chosen = {n: sum(1 for r in results if r.model == n) for n in MODELS}
    coverage = {lv: sum(r.covered[lv][0] for r in results)
                / max(1, sum(r.covered[lv][1] for r in results)) for lv in LEVELS}
    return Backtest(mase, wape, keys, chosen, coverage)
