"""A key's forecast chart: its demand history and forecast with its stock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.ticker import Formatter, FuncFormatter, Locator

from stockflow.entrypoints.charts.canvas import (
    FORECAST,
    HISTORY,
    LOST,
    NOTE_COLOR,
    NOTE_SIZE,
    ON_HAND,
    ROP,
    SAFETY,
    figure,
    legend_below,
    no_data,
    save,
    units_text,
)

__all__ = ["ForecastView", "forecast_chart"]

_HISTORY_DAYS = 120  # longer histories would squeeze the forecast into a sliver

# matplotlib.dates ships no type hints: its three names used here, typed
_day: Callable[[date], float] = mdates.date2num
_DateLocator: Callable[..., Locator] = mdates.AutoDateLocator
_DateFormatter: Callable[..., Formatter] = mdates.ConciseDateFormatter


@dataclass(frozen=True)
class ForecastView:
    """What a key's forecast chart shows."""

    key: str  # "SKU@WH"
    model: str  # the chosen model's name, e.g. "auto_ets"
    days: list[date]  # history days, oldest first, consecutive
    demand: list[float]  # units shipped per day
    lost: list[float]  # demand turned away per day (often all 0)
    on_hand: list[float]  # on hand at the end of each day
    mean: list[float]  # forecast per day for the len(mean) days after days[-1]
    intervals: dict[int, tuple[list[float], list[float]]]  # level -> (low, high) per day
    reorder_point: float | None  # units; None: not computed
    safety_stock: float | None



def forecast_chart(path: Path, view: ForecastView) -> None:
    """Write `view`'s chart: recent demand (and lost demand) as daily bars, the forecast
    with its intervals after it, and on hand against the reorder point on a second axis."""
    title = f"{view.key}: demand forecast by {view.model}"
    if not view.days:
        no_data(path, title, "the key has no demand history")
        return
    shown = min(len(view.days), _HISTORY_DAYS)
    note = (f"the last {shown} of {len(view.days):,} days of history" if shown < len(view.days)
            else f"{shown:,} days of history") + f", then {len(view.mean)} days forecast"
    if view.reorder_point is None:
        note += "; no reorder point computed"
    fig = figure(title)
    ax = fig.add_subplot()
    ax.set_title(note, fontsize=NOTE_SIZE, color=NOTE_COLOR)
    past = [_day(d) for d in view.days[-shown:]]
    ahead = [_day(view.days[-1] + timedelta(days=i + 1)) for i in range(len(view.mean))]
    handles = _demand_axis(ax, past, ahead, view) + _stock_axis(ax, past, view)
    legend_below(fig, handles, columns=(len(handles) + 1) // 2)
    save(fig, path)


def _demand_axis(ax: Axes, past: list[float], ahead: list[float],
                 view: ForecastView) -> list[Any]:
    """Daily demand, shipped and lost, then the forecast; returns the legend's handles."""
    # each day a step a day wide, filled as one shape per series: they read as daily
    # bars, where 120 bars of their own would be 240 artists to lay out and draw
    days, ahead_days = _edges(past), _edges(ahead)
    shipped, lost = view.demand[-len(past):], view.lost[-len(past):]
    handles: list[Any] = [ax.fill_between(days, 0, _held(shipped), step="post",
                                          color=HISTORY, linewidth=0, label="shipped")]
    if any(v > 0 for v in lost):
        handles.append(ax.fill_between(
            days, _held(shipped), _held([s + x for s, x in zip(shipped, lost, strict=True)]),
            step="post", color=LOST, linewidth=0, label="lost (turned away)"))
    bands = []
    levels = sorted(view.intervals, reverse=True)  # the widest first, palest, underneath
    for i, level in enumerate(levels):
        low, high = view.intervals[level]
        bands.append(ax.fill_between(ahead_days, _held(low), _held(high), step="post",
                                     color=FORECAST,
                                     alpha=0.15 + 0.2 * i / max(1, len(levels) - 1),
                                     linewidth=0, label=f"{level}% interval"))
    if ahead:
        handles += ax.plot(ahead_days, _held(view.mean), drawstyle="steps-post",
                           color=FORECAST, linewidth=2, label="forecast")
        ax.axvline(ahead_days[0], color="gray", linestyle=":", linewidth=1)
    ax.set_ylabel("demand (units/day)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(units_text))
    locator = _DateLocator(maxticks=12)
    ax.xaxis.set_major_locator(locator)
    # with day ticks, the year under the axis rather than "2026-Aug"
    ax.xaxis.set_major_formatter(_DateFormatter(locator, offset_formats=[
        "", "%Y", "%Y", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"]))
    ax.set_xlim(days[0], (ahead_days or days)[-1])
    ax.grid(axis="y", alpha=0.3)
    return handles + bands


def _edges(days: list[float]) -> list[float]:
    """The day boundaries around `days` (date numbers, a day apart)."""
    return [d - 0.5 for d in days] + [days[-1] + 0.5] if days else []


def _held(values: list[float]) -> list[float]:
    """`values` with the last repeated: a post-step over `_edges` ends a day after it."""
    return [*values, values[-1]] if values else []


def _stock_axis(ax: Axes, past: list[float], view: ForecastView) -> list[Any]:
    """On hand and the reorder lines on a second axis: units held, not units per day."""
    stock = ax.twinx()
    on_hand = view.on_hand[-len(past):]
    handles: list[Any] = stock.plot(past, on_hand, drawstyle="steps-mid", color=ON_HAND,
                                    linewidth=1.8, label="on hand")
    for value, name, color, style in ((view.reorder_point, "reorder point", ROP, "--"),
                                      (view.safety_stock, "safety stock", SAFETY, ":")):
        if value is not None:
            handles.append(stock.axhline(value, color=color, linestyle=style, linewidth=1.5,
                                         label=f"{name} ({units_text(value)})"))
    top = max([*on_hand, view.reorder_point or 0.0, view.safety_stock or 0.0, 1.0])
    stock.set_ylim(0, top * 1.1)
    stock.set_ylabel("on hand (units)", color=ON_HAND)
    stock.yaxis.set_major_formatter(FuncFormatter(units_text))
    return handles
