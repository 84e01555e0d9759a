"""A key's kept forecast as an SVG drawn on the server (beside `stock_chart`): the demand of
the weeks before it as daily bars, then the forecast a day as a step line inside its
intervals (the widest palest, underneath), a line where the forecast starts and one at
today when the forecast is older. Presentation attributes only: no script, no inline
style, as the console's Content Security Policy asks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from markupsafe import Markup

from stockflow.adapters.db.forecasts import KeptForecast

__all__ = ["DEMAND", "FORECAST", "forecast_svg"]

WIDTH, HEIGHT = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 24, 58
# Okabe-Ito, as the PNG charts: sky blue for what happened, orange for what is forecast
DEMAND, FORECAST = "#56B4E9", "#E69F00"
_BAND_OPACITY = {0: "0.45", 1: "0.22"}  # the narrowest interval darkest
_Scale = Callable[[float], float]  # a value to a coordinate


def forecast_svg(kept: KeptForecast, today: date) -> Markup:
    """The chart of `kept`: its recent demand, then its forecast from `kept.as_of`."""
    recent, mean = kept.recent, kept.mean
    first = kept.as_of - timedelta(days=len(recent))
    days = len(recent) + len(mean)
    bands = sorted(((int(level), lows_highs) for level, lows_highs in kept.intervals.items()),
                   reverse=True)  # the widest first: drawn underneath
    high = _nice(max(1.0, *recent, *mean, *(v for _, (_, hi) in bands for v in hi)) * 1.05)

    def x(day: float) -> float:  # day: days since `first`, at the start of the day
        return _LEFT + day / days * (WIDTH - _LEFT - _RIGHT)

    def y(v: float) -> float:
        return _TOP + (high - v) / high * (HEIGHT - _TOP - _BOTTOM)

    parts = [f'<svg class="chart" id="forecast-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             'role="img" aria-label="demand a day: the last weeks, then the forecast with '
             'its intervals">']
    parts.extend(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(v):.1f}" '
                 f'y2="{y(v):.1f}" stroke="#ccc"/><text x="{_LEFT - 6}" '
                 f'y="{y(v) + 4:.1f}" text-anchor="end">{_units(v)}</text>'
                 for v in sorted({0.0, high / 2, high}))
    for i, v in enumerate(recent):
        if v > 0:
            parts.append(f'<rect class="demand" x="{x(i) + 0.5:.1f}" y="{y(v):.1f}" '
                         f'width="{max(x(i + 1) - x(i) - 1, 0.5):.1f}" '
                         f'height="{y(0) - y(v):.1f}" fill="{DEMAND}"/>')
    start = len(recent)
    for rank, (level, (low, hi)) in enumerate(bands):
        opacity = _BAND_OPACITY.get(len(bands) - 1 - rank, "0.3")
        parts.append(f'<path class="interval" d="{_band(low, hi, start, x, y)}" '
                     f'fill="{FORECAST}" fill-opacity="{opacity}" stroke="none">'
                     f'<title>{level}% interval</title></path>')
    parts.append(f'<path class="forecast" d="{_steps(mean, start, x, y)}" fill="none" '
                 f'stroke="{FORECAST}" stroke-width="2.5"><title>forecast</title></path>')
    parts.append(_marker(x(start), "forecast from", "#1d2330", "end"))
    ahead = (today - kept.as_of).days
    if 0 < ahead < len(mean):
        parts.append(_marker(x(start + ahead), "today", "#b3261e", "start"))
    for day, anchor in ((first, "start"), (kept.as_of, "middle"),
                        (kept.as_of + timedelta(days=len(mean) - 1), "end")):
        parts.append(f'<text x="{x((day - first).days + 0.5):.1f}" y="{HEIGHT - 40}" '
                     f'text-anchor="{anchor}">{day:%a %Y-%m-%d}</text>')
    legend = [("demand a day (shipped + turned away)", DEMAND, "1"), ("forecast", FORECAST, "1")]
    legend += [(f"{level}% interval", FORECAST, _BAND_OPACITY.get(len(bands) - 1 - rank, "0.3"))
               for rank, (level, _) in enumerate(bands)]
    at: float = _LEFT
    for name, colour, opacity in legend:
        parts.append(f'<rect x="{at}" y="{HEIGHT - 18}" width="14" height="10" '
                     f'fill="{colour}" fill-opacity="{opacity}"/><text x="{at + 19}" '
                     f'y="{HEIGHT - 9}">{name}</text>')
        at += 32 + 6.9 * len(name)
    parts.append("</svg>")
    # numbers, dates and fixed words only: nothing a user wrote goes in
    return Markup("".join(parts))  # noqa: S704


def _nice(v: float) -> float:
    """The round number at or above `v` an axis ends at (a few steps a power of ten, each
    even, so the middle line is round too)."""
    power = 10.0 ** math.floor(math.log10(v))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= v)


def _units(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:,.1f}".removesuffix(".0")


def _steps(values: Sequence[float], start: int, x: _Scale, y: _Scale) -> str:
    """A step a day: each value held from its day's start to its end."""
    path = [f"M{x(start):.1f} {y(values[0]):.1f}"]
    for i, v in enumerate(values):
        path.append(f"V{y(v):.1f} H{x(start + i + 1):.1f}")
    return " ".join(path)


def _band(low: Sequence[float], high: Sequence[float], start: int, x: _Scale,
          y: _Scale) -> str:
    """The area between `low` and `high`, a step a day: along the top, back along the
    bottom."""
    top = _steps(high, start, x, y)
    back = [f"V{y(low[-1]):.1f}"]
    for i in range(len(low) - 1, -1, -1):
        back.append(f"H{x(start + i):.1f}")
        if i:
            back.append(f"V{y(low[i - 1]):.1f}")
    return f"{top} {' '.join(back)} Z"


def _marker(at: float, label: str, colour: str, anchor: str) -> str:
    """A dashed line down the plot at `at`, labelled above it on the `anchor` side."""
    shift = 4 if anchor == "start" else -4
    return (f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{_TOP - 8}" y2="{HEIGHT - _BOTTOM}" '
            f'stroke="{colour}" stroke-dasharray="3 3"/><text x="{at + shift:.1f}" '
            f'y="{_TOP - 10}" text-anchor="{anchor}" fill="{colour}">{label}</text>')
