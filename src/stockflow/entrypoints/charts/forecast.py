"""A key's forecast chart: its demand and forecast in the upper panel, its stock and
today's reorder suggestion in the lower one, on one time axis. Units a day and units held
get a panel each, so no reorder point can be read as the edge of a forecast interval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import SubFigure
from matplotlib.ticker import Formatter, FuncFormatter, Locator

from stockflow.entrypoints.charts.canvas import (
    FORECAST,
    HISTORY,
    LOST,
    ON_HAND,
    ON_ORDER,
    POSITION,
    ROP,
    SAFETY,
    TALL,
    figure,
    no_data,
    save,
    units_text,
)

__all__ = ["Applied", "ForecastView", "Plan", "forecast_chart", "forecast_figure",
           "threshold_steps", "thresholds_drawn"]

_HISTORY_DAYS = 120  # longer histories would squeeze the forecast into a sliver
_SPAN = "#d9d9d9"  # the lead time's span: grey, unlike the forecast's orange intervals

# matplotlib.dates ships no type hints: its three names used here, typed
_day: Callable[[date], float] = mdates.date2num
_DateLocator: Callable[..., Locator] = mdates.AutoDateLocator
_DateFormatter: Callable[..., Formatter] = mdates.ConciseDateFormatter


@dataclass(frozen=True)
class Applied:
    """A key's reorder point and safety stock, in force from a day on until the next."""

    since: date
    reorder_point: float
    safety_stock: float


@dataclass(frozen=True)
class Plan:
    """Today's reorder suggestion, as the chart shows it."""

    available: float
    in_transit: float
    on_order: float
    level: float  # the suggested reorder point, which is the order-up-to level too
    safety_stock: float  # the part of the level above the demand expected over its cover
    suggested: float  # units to order today
    lead_time_days: int
    review_days: int
    service_level: float

    @property
    def position(self) -> float:
        """What the suggestion counts as held: available + in transit + on order."""
        return self.available + self.in_transit + self.on_order


@dataclass(frozen=True)
class ForecastView:
    """What a key's forecast chart shows."""

    key: str  # "SKU@WH"
    model: str  # the chosen model's name, e.g. "auto_ets"
    days: list[date]  # history days, oldest first, consecutive, ending yesterday
    demand: list[float]  # units shipped per day
    lost: list[float]  # demand turned away per day (often all 0)
    on_hand: list[float]  # at the end of each day
    position: list[float]  # available + in transit + on order at the end of each day
    on_order: list[float]  # at the end of each day
    mean: list[float]  # forecast per day for the len(mean) days from today
    intervals: dict[int, tuple[list[float], list[float]]]  # level -> (low, high) per day
    applied: list[Applied] = field(default_factory=list)  # nothing known before the first
    unrecorded: list[date] = field(default_factory=list)  # changes whose values are unknown
    plan: Plan | None = None  # None: no suggestion computed


def thresholds_drawn(changes: Sequence[tuple[date, float | None, float | None]],
                     ) -> tuple[list[Applied], list[date]]:
    """A key's threshold changes (the day each applied, the reorder point and safety stock
    it set, None where not known) as the chart draws them: the changes after the last one
    whose values are unknown as steps (`ForecastView.applied`), every change up to it as
    a mark (`ForecastView.unrecorded`): a step must not run across a change it does not
    know."""
    unknown = [i for i, (_, rp, ss) in enumerate(changes) if rp is None or ss is None]
    cut = unknown[-1] + 1 if unknown else 0
    return ([Applied(day, rp, ss) for day, rp, ss in changes[cut:]
             if rp is not None and ss is not None],
            [day for day, _, _ in changes[:cut]])


def threshold_steps(applied: Sequence[Applied], start: date, end: date) -> list[Applied]:
    """The thresholds in force on the days from `start` until `end` (not included), one
    step each from the day it applied (from `start` for one applied before it); nothing
    before the first applied, and nothing for one replaced on the day it applied."""
    ordered = sorted(applied, key=lambda a: a.since)  # stable: the same day's last wins
    steps = []
    for i, a in enumerate(ordered):
        after = ordered[i + 1] if i + 1 < len(ordered) else None
        since = max(a.since, start)
        if since >= end or (after is not None and after.since <= since):
            continue
        steps.append(replace(a, since=since))
    return steps


def forecast_chart(path: Path, view: ForecastView) -> None:
    """Write `view`'s chart as a PNG at `path` (see `forecast_figure`)."""
    if not view.days:
        no_data(path, _title(view), "the key has no demand history")
        return
    save(forecast_figure(view), path)


def _title(view: ForecastView) -> str:
    return f"{view.key}: demand forecast by {view.model}, stock and reorder suggestion"


def forecast_figure(view: ForecastView) -> SubFigure:
    """The chart of a key with history: above, its recent demand (and lost demand) as
    daily bars and the forecast with its intervals after them; below, its stock day by
    day, its reorder point and safety stock from when they were set, and today's
    suggestion (position, lead time, level and quantity)."""
    shown = min(len(view.days), _HISTORY_DAYS)
    note = (f"the last {shown} of {len(view.days):,} days of history" if shown < len(view.days)
            else f"{shown:,} days of history") + (
        f", then {len(view.mean)} days forecast; stock at the end of each day")
    if view.unrecorded:
        note += ("\nreorder point and safety stock from the day they were set; for changes "
                 "made before their values were recorded, only when")
    elif view.applied:
        note += "\nreorder point and safety stock from the day they were set"
    fig = figure(_title(view), note, height=TALL)
    demand, stock = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.25))
    past = [_day(d) for d in view.days[-shown:]]
    today = view.days[-1] + timedelta(days=1)
    ahead = [_day(today + timedelta(days=i)) for i in range(len(view.mean))]
    _demand_panel(demand, past, ahead, view)
    right = _stock_panel(stock, past, today, view)
    stock.set_xlim(past[0] - 0.5, max(right, (ahead or past)[-1] + 0.5))
    locator = _DateLocator(maxticks=12)
    stock.xaxis.set_major_locator(locator)
    # with day ticks, the year under the axis rather than "2026-Aug"
    stock.xaxis.set_major_formatter(_DateFormatter(locator, offset_formats=[
        "", "%Y", "%Y", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"]))
    for ax in (demand, stock):
        ax.axvline(_day(today) - 0.5, color="black", linestyle=":", linewidth=1)
        ax.grid(axis="y", alpha=0.3)
        ax.yaxis.set_major_formatter(FuncFormatter(units_text))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    demand.text(_day(today) - 0.5, 1.0, " today", transform=demand.get_xaxis_transform(),
                va="bottom", fontsize=8)
    return fig


def _demand_panel(ax: Axes, past: list[float], ahead: list[float], view: ForecastView) -> None:
    """Daily demand, shipped and lost, then the forecast and its intervals."""
    # each day a step a day wide, filled as one shape per series: they read as daily
    # bars, where 120 bars of their own would be 240 artists to lay out and draw
    days, ahead_days = _edges(past), _edges(ahead)
    shipped, lost = view.demand[-len(past):], view.lost[-len(past):]
    ax.fill_between(days, 0, _held(shipped), step="post", color=HISTORY, linewidth=0,
                    label="shipped")
    if any(v > 0 for v in lost):
        ax.fill_between(
            days, _held(shipped), _held([s + x for s, x in zip(shipped, lost, strict=True)]),
            step="post", color=LOST, linewidth=0, label="lost (turned away)")
    if ahead:
        ax.plot(ahead_days, _held(view.mean), drawstyle="steps-post", color=FORECAST,
                linewidth=2, label="forecast")
    levels = sorted(view.intervals, reverse=True)  # the widest first, palest, underneath
    for i, level in enumerate(levels):
        low, high = view.intervals[level]
        ax.fill_between(ahead_days, _held(low), _held(high), step="post", color=FORECAST,
                        alpha=0.15 + 0.2 * i / max(1, len(levels) - 1), linewidth=0,
                        label=f"{level}% interval")
    ax.set_ylabel("demand (units a day)")
    ax.set_ylim(bottom=0)
    ax.set_title("demand and forecast", fontsize=10, loc="left")


def _edges(days: list[float]) -> list[float]:
    """The day boundaries around `days` (date numbers, a day apart)."""
    return [d - 0.5 for d in days] + [days[-1] + 0.5] if days else []


def _held(values: list[float]) -> list[float]:
    """`values` with the last repeated: a post-step over `_edges` ends a day after it."""
    return [*values, values[-1]] if values else []


def _stock_panel(ax: Axes, past: list[float], today: date, view: ForecastView) -> float:
    """Stock day by day, the thresholds in force, and today's suggestion; returns the
    right end of what it drew (the end of the lead time and review)."""
    n = len(past)
    on_order = view.on_order[-n:]
    if any(v > 0 for v in on_order):
        ax.fill_between(past, 0, on_order, step="mid", color=ON_ORDER, alpha=0.35,
                        linewidth=0, label="on order (purchase orders)")
    # the position under on hand and wider: where nothing is reserved, in transit or on
    # order the two are equal, and the position shows as on hand's blue edge
    ax.plot(past, view.position[-n:], drawstyle="steps-mid", color=POSITION, linewidth=2.4,
            label="position: available + in transit\n+ on order")
    ax.plot(past, view.on_hand[-n:], drawstyle="steps-mid", color=ON_HAND, linewidth=1.4,
            label="on hand")
    start = view.days[-n]
    steps = threshold_steps(view.applied, start, today)
    later = [a for a in view.applied if a.since >= today][-1:]  # nothing of it to draw yet
    _thresholds(ax, steps, today, "until today" if later else "now")
    for a in later:
        when = "today" if a.since == today else a.since.isoformat()
        ax.plot([], [], color=ROP, label=f"reorder point {units_text(a.reorder_point)}, safety"
                                         f"\nstock {units_text(a.safety_stock)}: set {when}")
    tops = [*view.on_hand[-n:], *view.position[-n:], *(s.reorder_point for s in steps), 1.0]
    marks = [d for d in view.unrecorded if start <= d < today]
    for d in marks:
        ax.axvline(_day(d) - 0.5, color="gray", linestyle=(0, (2, 3)), linewidth=1)
    if marks:
        ax.plot([], [], color="gray", linestyle=(0, (2, 3)), linewidth=1,
                label="thresholds set here\n(values not recorded)")
    right = _day(today) - 0.5
    if view.plan is not None:
        right = _plan(ax, today, view.plan)
        tops += [view.plan.level, view.plan.position]
    ax.set_ylim(min(0.0, *view.on_hand[-n:]), max(tops) * 1.15)
    ax.set_ylabel("units held")
    target = (f" for a {view.plan.service_level:.0%} service level" if view.plan
              else "; no reorder suggestion computed")
    ax.set_title(f"stock and today's reorder suggestion{target}", fontsize=10, loc="left")
    return right


def _thresholds(ax: Axes, steps: list[Applied], today: date, last: str) -> None:
    """The reorder point and safety stock in force, a step from each day one was set; the
    legend gives the last step's values, in force `last` ("now", "until today")."""
    if not steps:
        return
    xs = [_day(s.since) - 0.5 for s in steps] + [_day(today) - 0.5]
    for name, ys, color, style in (
            ("reorder point", [s.reorder_point for s in steps], ROP, "-"),
            ("safety stock", [s.safety_stock for s in steps], SAFETY, (0, (1, 1.5)))):
        ax.plot(xs, [*ys, ys[-1]], drawstyle="steps-post", color=color, linestyle=style,
                linewidth=1.6, label=f"{name} in force ({units_text(ys[-1])} {last})")
        for x, y in zip(xs, ys, strict=False):  # each step's value where it starts
            ax.annotate(units_text(y), (x, y), xytext=(2, 2), textcoords="offset points",
                        fontsize=7, color=color)


def _plan(ax: Axes, today: date, plan: Plan) -> float:
    """Today's suggestion: the lead time and review the level covers, the level, the
    safety stock within it, the position and what to order; returns the cover's end."""
    now = _day(today) - 0.5
    arrives, next_review = now + plan.lead_time_days, now + plan.lead_time_days + plan.review_days
    ax.axvspan(now, arrives, color=_SPAN, alpha=0.6, linewidth=0,
               label=f"lead time: {plan.lead_time_days} d until an order\nplaced today arrives")
    ax.axvspan(arrives, next_review, facecolor="none", edgecolor=_SPAN, hatch="//",
               linewidth=0, label=f"review period: {plan.review_days} d until\nthe next order")
    ax.hlines(plan.level, now, next_review, color=ROP, linestyle="--", linewidth=2,
              label=f"suggested level ({units_text(plan.level)}): reorder point\n"
                    "and order-up-to, covering both spans")
    ax.hlines(plan.safety_stock, now, next_review, color=SAFETY, linestyle="--", linewidth=1.4,
              label=f"safety stock within it ({units_text(plan.safety_stock)})")
    x = _day(today)
    ax.plot([x], [plan.position], marker="o", color=POSITION, linestyle="",
            label=f"position today ({units_text(plan.position)}): available "
                  f"{units_text(plan.available)}\n+ in transit {units_text(plan.in_transit)}"
                  f" + on order {units_text(plan.on_order)}")
    if plan.suggested > 0:
        ax.annotate("", xy=(x, plan.level), xytext=(x, plan.position),
                    arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.8})
        ax.annotate(f"order {units_text(plan.suggested)}",
                    (x, (plan.level + plan.position) / 2), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=9, fontweight="bold")
    else:
        ax.annotate("nothing to order: the position\nis at or above the level",
                    (x, plan.position), xytext=(-8, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=8)
    return next_review
