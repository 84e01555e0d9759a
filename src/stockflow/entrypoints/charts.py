"""PNG charts for people who would rather look at a picture than a table: a key's demand
history and forecast with its stock, the forecast backtest, and the three reports.

Drawn with matplotlib's object API on the Agg canvas, never `pyplot`: pyplot keeps the
current figure in global state, which leaks memory in a long-lived process and races
between threads; a `Figure` of our own does neither and needs no display. Every chart is
1,200 x 600 pixels, notes under the plot, legends outside the data. Money arrives as
`Decimal` and becomes a float only to be drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, FuncFormatter, Locator, MaxNLocator, PercentFormatter

from stockflow.planning.forecast import BASELINE, Backtest

__all__ = ["ForecastView", "backtest_chart", "forecast_chart", "report_chart"]

_SIZE = (12.0, 6.0)  # inches; at _DPI, 1,200 x 600 pixels
_DPI = 100
_HISTORY_DAYS = 120  # longer histories would squeeze the forecast into a sliver
_MAX_ROWS = 30  # bars beyond this are too thin to label; the table has them all
_LABELLED_BARS = 24  # value labels on at most this many bars, or they overlap
_NOTE_SIZE, _NOTE_COLOR = 9, "dimgray"
# history bars pale, so the forecast, on-hand and reorder lines drawn over them stand out
_HISTORY, _DEMAND, _LOST = "#a6bddb", "#4c72b0", "#c44e52"
_FORECAST, _ON_HAND = "#dd8452", "#2e8b57"
_ROP, _SAFETY = "#8c1c13", "#8172b3"
_SEVERITY = {"out_of_stock": "#c44e52", "low": "#dd8452"}

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


def _units(v: float, _pos: int | None = None) -> str:
    """1,234 for whole numbers, 0.25 for the small fractions of slow movers' axes."""
    text = f"{v:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _money(v: float) -> str:
    return f"{v:,.2f}"


def _priced(currency: str) -> Callable[[float], str]:
    return lambda v: f"{_money(v)} {currency}"


def _maybe(v: Any) -> float | None:
    return None if v is None else float(v)


def _num(v: Any) -> float:
    """A report cell as a float to add up; None (no such figure) as 0."""
    return 0.0 if v is None else float(v)


def _figure(title: str, note: str | None = None) -> SubFigure:
    """A chart's drawing area, between its title and its note. The constrained layout
    stacks a figure's title and note with the legends of a subfigure, never with its own
    (they would overlap), hence the subfigure."""
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    fig.suptitle(title, fontsize=14, fontweight="bold")
    if note:
        fig.supxlabel(note, fontsize=_NOTE_SIZE, color=_NOTE_COLOR)
    return fig.add_subfigure(fig.add_gridspec()[0])


def _save(chart: SubFigure, path: Path) -> None:
    FigureCanvasAgg(chart.figure)  # attaches itself to the figure: no backend, no display
    chart.figure.savefig(path, format="png", dpi=_DPI)


def _no_data(path: Path, title: str, why: str) -> None:
    # an empty period is an answer too: the file exists and says so, rather than a
    # blank image or a missing file that looks like a failure
    fig = _figure(title)
    ax = fig.add_subplot()
    ax.set_facecolor("#f2f2f2")
    ax.set(xticks=[], yticks=[])
    ax.text(0.5, 0.55, "no data", ha="center", va="center", fontsize=40, color="gray",
            transform=ax.transAxes)
    ax.text(0.5, 0.4, why, ha="center", va="center", fontsize=12, color="dimgray",
            transform=ax.transAxes)
    _save(fig, path)


def _legend_below(fig: SubFigure, handles: Sequence[Any], columns: int) -> None:
    fig.legend(handles=list(handles), loc="outside lower center", ncols=columns,
               frameon=False)


# --- the forecast ---------------------------------------------------------------------


def forecast_chart(path: Path, view: ForecastView) -> None:
    """Write `view`'s chart: recent demand (and lost demand) as daily bars, the forecast
    with its intervals after it, and on hand against the reorder point on a second axis."""
    title = f"{view.key}: demand forecast by {view.model}"
    if not view.days:
        _no_data(path, title, "the key has no demand history")
        return
    shown = min(len(view.days), _HISTORY_DAYS)
    note = (f"the last {shown} of {len(view.days):,} days of history" if shown < len(view.days)
            else f"{shown:,} days of history") + f", then {len(view.mean)} days forecast"
    if view.reorder_point is None:
        note += "; no reorder point computed"
    fig = _figure(title)
    ax = fig.add_subplot()
    ax.set_title(note, fontsize=_NOTE_SIZE, color=_NOTE_COLOR)
    past = [_day(d) for d in view.days[-shown:]]
    ahead = [_day(view.days[-1] + timedelta(days=i + 1)) for i in range(len(view.mean))]
    handles = _demand_axis(ax, past, ahead, view) + _stock_axis(ax, past, view)
    _legend_below(fig, handles, columns=(len(handles) + 1) // 2)
    _save(fig, path)


def _demand_axis(ax: Axes, past: list[float], ahead: list[float],
                 view: ForecastView) -> list[Any]:
    """Daily demand, shipped and lost, then the forecast; returns the legend's handles."""
    # each day a step a day wide, filled as one shape per series: they read as daily
    # bars, where 120 bars of their own would be 240 artists to lay out and draw
    days, ahead_days = _edges(past), _edges(ahead)
    shipped, lost = view.demand[-len(past):], view.lost[-len(past):]
    handles: list[Any] = [ax.fill_between(days, 0, _held(shipped), step="post",
                                          color=_HISTORY, linewidth=0, label="shipped")]
    if any(v > 0 for v in lost):
        handles.append(ax.fill_between(
            days, _held(shipped), _held([s + x for s, x in zip(shipped, lost, strict=True)]),
            step="post", color=_LOST, linewidth=0, label="lost (turned away)"))
    bands = []
    levels = sorted(view.intervals, reverse=True)  # the widest first, palest, underneath
    for i, level in enumerate(levels):
        low, high = view.intervals[level]
        bands.append(ax.fill_between(ahead_days, _held(low), _held(high), step="post",
                                     color=_FORECAST,
                                     alpha=0.15 + 0.2 * i / max(1, len(levels) - 1),
                                     linewidth=0, label=f"{level}% interval"))
    if ahead:
        handles += ax.plot(ahead_days, _held(view.mean), drawstyle="steps-post",
                           color=_FORECAST, linewidth=2, label="forecast")
        ax.axvline(ahead_days[0], color="gray", linestyle=":", linewidth=1)
    ax.set_ylabel("demand (units/day)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(_units))
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
    handles: list[Any] = stock.plot(past, on_hand, drawstyle="steps-mid", color=_ON_HAND,
                                    linewidth=1.8, label="on hand")
    for value, name, color, style in ((view.reorder_point, "reorder point", _ROP, "--"),
                                      (view.safety_stock, "safety stock", _SAFETY, ":")):
        if value is not None:
            handles.append(stock.axhline(value, color=color, linestyle=style, linewidth=1.5,
                                         label=f"{name} ({_units(value)})"))
    top = max([*on_hand, view.reorder_point or 0.0, view.safety_stock or 0.0, 1.0])
    stock.set_ylim(0, top * 1.1)
    stock.set_ylabel("on hand (units)", color=_ON_HAND)
    stock.yaxis.set_major_formatter(FuncFormatter(_units))
    return handles


# --- the backtest ---------------------------------------------------------------------


def backtest_chart(path: Path, summary: Backtest) -> None:
    """Write the backtest's chart: each model's held-out MASE for smooth and intermittent
    keys, the chosen models' beside them, and the intervals' coverage against nominal."""
    title = "Forecast backtest on the held-out window"
    if not summary.mase and not summary.coverage:
        _no_data(path, title, "no key had enough history for a backtest")
        return
    fig = _figure(title, "MASE: mean absolute error over the seasonal naive's in-sample "
                         "error; below 1 is better than repeating last week. "
                         "chosen: each key's selected model.")
    left, right = fig.subplots(1, 2, width_ratios=(3, 1))
    _mase_panel(left, summary)
    _coverage_panel(right, summary.coverage)
    _save(fig, path)


def _mase_panel(ax: Axes, summary: Backtest) -> None:
    classes = {"smooth": _DEMAND, "intermittent": _FORECAST}
    models = [m for m in summary.mase if m != "chosen"] + (
        ["chosen"] if "chosen" in summary.mase else [])
    width = 0.38
    for x, model in enumerate(models):
        present = [c for c in classes if c in summary.mase[model]]
        for i, cls in enumerate(present):
            value = summary.mase[model][cls]
            bars = ax.bar(x + (i - (len(present) - 1) / 2) * width, value, width,
                          color=classes[cls], hatch="//" if model == BASELINE else None,
                          edgecolor="black" if model == "chosen" else "white",
                          linewidth=1.5 if model == "chosen" else 0.5)
            ax.bar_label(bars, labels=[f"{value:.2f}"], padding=2, fontsize=8)
        if model == "chosen":
            ax.axvspan(x - 0.5, x + 0.5, color="#fff3c4", zorder=0)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(models)), [_model_label(m, summary.chosen) for m in models],
                  fontsize=9)
    for tick, model in zip(ax.get_xticklabels(), models, strict=True):
        if model == "chosen":
            tick.set_fontweight("bold")
    ax.set_ylabel("MASE (1.0 = seasonal naive in sample)")
    top = max([1.0, *(v for m in summary.mase.values() for v in m.values())])
    ax.set_ylim(0, top * 1.3)  # the legend's row sits above the tallest bar
    ax.set_xlabel("model, and how many keys chose it", fontsize=9)
    ax.set_title("error per model, held out", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=[Patch(color=c, label=f"{cls} ({summary.keys.get(cls, 0):,} keys)")
                       for cls, c in classes.items()]
              + [Patch(facecolor="white", edgecolor="gray", hatch="//", label="baseline")],
              loc="upper center", ncols=3, fontsize=9)


def _model_label(model: str, chosen: dict[str, int]) -> str:
    if model == "chosen":
        return "chosen\n(per key)"
    base = f"{model}\n(baseline)" if model == BASELINE else model
    return f"{base}\n{chosen.get(model, 0):,} keys"


def _coverage_panel(ax: Axes, coverage: dict[int, float]) -> None:
    levels = sorted(coverage)
    width = 0.38
    xs = range(len(levels))
    nominal = ax.bar([x - width / 2 for x in xs], [lv / 100 for lv in levels], width,
                     color="#bbbbbb", label="nominal")
    actual = ax.bar([x + width / 2 for x in xs], [coverage[lv] for lv in levels], width,
                    color=_ON_HAND, label="held out")
    for bars in (nominal, actual):
        ax.bar_label(bars, labels=[f"{b.get_height():.0%}" for b in bars], padding=2,
                     fontsize=8)
    ax.set_xticks(list(xs), [f"{lv}% interval" for lv in levels])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("actuals inside the interval")
    ax.set_title("interval coverage", fontsize=11)
    ax.legend(loc="upper left", fontsize=9, ncols=2)


# --- the reports ----------------------------------------------------------------------


def report_chart(path: Path, report: str, rows: list[dict[str, Any]], title: str) -> None:
    """Write the chart of `report` ("stock", "movements" or "valuation"; the stock
    report's low list is told by its `key` column) from its `rows`, titled `title`."""
    if not rows:
        _no_data(path, title, "the report has no rows for these filters")
        return
    draw: Callable[[list[dict[str, Any]], str], SubFigure]
    if report == "stock":
        draw = _low if "key" in rows[0] else _stock
    elif report == "movements":
        draw = _movements
    elif report == "valuation":
        draw = _valuation
    else:
        raise ValueError(f"report: stock, movements or valuation; got {report!r}")
    _save(draw(rows, title), path)


def _hbars(ax: Axes, labels: Sequence[str], series: dict[str, list[float | None]],
           colors: Sequence[str], fmt: Callable[[float], str] = _units) -> None:
    """Grouped horizontal bars, first row on top as in the table, names level; a None
    (no such figure for that row) is no bar, not a bar of zero."""
    height = 0.8 / max(1, len(series))
    label_bars = len(labels) * len(series) <= _LABELLED_BARS
    for i, ((name, values), color) in enumerate(zip(series.items(), colors, strict=True)):
        drawn = [math.nan if v is None else v for v in values]
        bars = ax.barh([y - 0.4 + height * (i + 0.5) for y in range(len(labels))], drawn,
                       height=height, color=color, label=name)
        if label_bars:
            ax.bar_label(bars, labels=["" if v is None else fmt(v) for v in values],
                         padding=3, fontsize=8)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(_units))
    ax.margins(x=0.12)  # room for the value labels
    ax.grid(axis="x", alpha=0.3)


def _clipped(rows: list[dict[str, Any]], what: str) -> str:
    return (f"the first {_MAX_ROWS} of {len(rows):,} {what}; the table lists them all"
            if len(rows) > _MAX_ROWS else "")


def _stock(rows: list[dict[str, Any]], title: str) -> SubFigure:
    fig = _figure(title, _clipped(rows, "warehouses") or None)
    rows = rows[:_MAX_ROWS]
    units, alerts = fig.subplots(1, 2, sharey=True, width_ratios=(3, 1))
    labels = [f"{r['warehouse']}\n{r['keys']:,} keys" for r in rows]
    _hbars(units, labels, {c.replace("_", " "): [_num(r[c]) for r in rows]
                           for c in ("on_hand", "reserved", "available")},
           (_DEMAND, _SAFETY, _ON_HAND))
    units.set_xlabel("units")
    units.set_title("stock", fontsize=11)
    _hbars(alerts, labels, {"low": [_num(r["low"]) for r in rows],
                            "out of stock": [_num(r["out_of_stock"]) for r in rows]},
           (_SEVERITY["low"], _SEVERITY["out_of_stock"]))
    alerts.set_xlabel("keys")
    alerts.set_title("low and out-of-stock keys", fontsize=11)
    _legend_below(fig, units.get_legend_handles_labels()[0]
                  + alerts.get_legend_handles_labels()[0], columns=5)
    return fig


def _low(rows: list[dict[str, Any]], title: str) -> SubFigure:
    fig = _figure(title, _clipped(rows, "keys (out of stock first, then by available)")
                  or None)
    rows = rows[:_MAX_ROWS]
    ax = fig.add_subplot()
    ys = range(len(rows))
    available = [_num(r["available"]) for r in rows]
    colors = [_SEVERITY.get(str(r["severity"]), "gray") for r in rows]
    bars = ax.barh(ys, available, height=0.7, color=colors)
    ax.bar_label(bars, labels=[_units(v) for v in available], padding=3, fontsize=8)
    for column, marker, color in (("reorder_point", "|", _ROP), ("safety_stock", "|", _SAFETY)):
        marked = [(y, float(r[column])) for y, r in zip(ys, rows, strict=True)
                  if r.get(column) is not None]
        ax.scatter([v for _, v in marked], [y for y, _ in marked], marker=marker, s=220,
                   linewidths=2.5, color=color, zorder=2.5)  # under the value labels
    ax.set_yticks(list(ys), [str(r["key"]) for r in rows], fontsize=8 if len(rows) > 15 else 9)
    for tick, color in zip(ax.get_yticklabels(), colors, strict=True):
        tick.set_color(color)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(right=max([1.0, *available, *(_num(r.get("reorder_point")) for r in rows)])
                * 1.1)
    ax.xaxis.set_major_formatter(FuncFormatter(_units))
    ax.set_xlabel("units available (on hand less reserved)")
    ax.grid(axis="x", alpha=0.3)
    _legend_below(fig, [
        Patch(color=_SEVERITY["out_of_stock"], label="out of stock"),
        Patch(color=_SEVERITY["low"], label="low"),
        Line2D([], [], marker="|", linestyle="", markersize=14, markeredgewidth=2.5,
               color=_ROP, label="reorder point"),
        Line2D([], [], marker="|", linestyle="", markersize=14, markeredgewidth=2.5,
               color=_SAFETY, label="safety stock")], columns=4)
    return fig


def _movements(rows: list[dict[str, Any]], title: str) -> SubFigure:
    warehouses = list(dict.fromkeys(str(r["warehouse"]) for r in rows))
    fig = _figure(title, _clipped([{"warehouse": w} for w in warehouses], "warehouses")
                  or None)
    warehouses = warehouses[:_MAX_ROWS]
    units, money = fig.subplots(1, 2, sharey=True, width_ratios=(2.4, 1))
    types = _moved_units(units, rows, warehouses)
    counts = {w: sum(_num(r["movements"]) for r in rows if r["warehouse"] == w)
              for w in warehouses}
    units.set_yticks(range(len(warehouses)),
                     [f"{w}\n{_units(counts[w])} movements" for w in warehouses])
    units.set_ylim(len(warehouses) - 0.5, -0.5)
    _net_value(money, rows, warehouses)
    _legend_below(fig, units.get_legend_handles_labels()[0], columns=min(len(types), 5))
    return fig


def _moved_units(ax: Axes, rows: list[dict[str, Any]], warehouses: list[str]) -> list[str]:
    """Units in to the right of zero and out to the left, a segment per event type (the
    busiest nearest zero); returns the event types, as drawn."""
    volume: dict[str, float] = {}
    for r in rows:
        volume[r["event_type"]] = (volume.get(r["event_type"], 0.0) + _num(r["units_in"])
                                   + _num(r["units_out"]))
    types = sorted(volume, key=lambda t: -volume[t])
    palette = [f"C{i}" for i in range(10)] + ["#17becf", "#bcbd22", "#393b79", "#e7ba52"]
    cell = {(str(r["warehouse"]), str(r["event_type"])): r for r in rows}
    ys = range(len(warehouses))
    into, out = [0.0] * len(warehouses), [0.0] * len(warehouses)
    for t, color in zip(types, palette * 2, strict=False):
        ins = [_num(cell.get((w, t), {}).get("units_in")) for w in warehouses]
        outs = [-_num(cell.get((w, t), {}).get("units_out")) for w in warehouses]
        ax.barh(ys, ins, left=into, height=0.6, color=color, label=t)
        ax.barh(ys, outs, left=out, height=0.6, color=color)
        into = [a + b for a, b in zip(into, ins, strict=True)]
        out = [a + b for a, b in zip(out, outs, strict=True)]
    ax.axvline(0, color="black", linewidth=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _units(abs(v))))
    ax.set_xlabel("units  \u2190 out  |  in \u2192")
    ax.set_title("units moved by event type", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    return types


def _net_value(ax: Axes, rows: list[dict[str, Any]], warehouses: list[str]) -> None:
    net = [sum(_num(r["net_value"]) for r in rows if r["warehouse"] == w) for w in warehouses]
    if any(r["net_value"] is not None for r in rows):
        bars = ax.barh(range(len(warehouses)), net, height=0.6,
                       color=[_ON_HAND if v >= 0 else _LOST for v in net])
        if len(warehouses) <= _LABELLED_BARS:
            ax.bar_label(bars, labels=[_money(v) for v in net], padding=3, fontsize=8)
        ax.margins(x=0.45)  # room for the money labels, on either side of zero
    else:
        ax.text(0.5, 0.5, "no costed movements", ha="center", va="center",
                transform=ax.transAxes, fontsize=_NOTE_SIZE, color=_NOTE_COLOR)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=3))  # a narrow panel: few, wide labels
    ax.xaxis.set_major_formatter(FuncFormatter(_units))
    ax.set_xlabel("net value at cost (each key's currency)")
    ax.set_title("net value", fontsize=11)
    ax.grid(axis="x", alpha=0.3)


def _valuation(rows: list[dict[str, Any]], title: str) -> SubFigure:
    currencies = list(dict.fromkeys(str(r["currency"]) for r in rows
                                    if r["currency"] is not None))
    uncosted = any(r["currency"] is None for r in rows)
    shown = currencies[:3]  # more panels would leave each too narrow to read
    warehouses = list(dict.fromkeys(str(r["warehouse"]) for r in rows))
    notes = [n for n in (
        f"{len(currencies) - len(shown)} more currencies in the table"
        if len(currencies) > len(shown) else "",
        _clipped([{"warehouse": w} for w in warehouses], "warehouses"),
        "not costed: units received without a unit cost, so without a value"
        if uncosted else "") if n]
    fig = _figure(title, "; ".join(notes) or None)
    warehouses = warehouses[:_MAX_ROWS]
    panels: list[str | None] = [*shown, *([None] if uncosted else [])]
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, currency, color in zip(axes, panels, (_DEMAND, _ON_HAND, _SAFETY, "#999999"),
                                   strict=False):
        cell = {str(r["warehouse"]): r for r in rows if r["currency"] == currency}
        if currency is None:
            units = [_maybe(cell.get(w, {}).get("on_hand")) for w in warehouses]
            _hbars(ax, warehouses, {"not costed": units}, ["#999999"])
            ax.set_title("not costed", fontsize=11)
            ax.set_xlabel("units on hand")
        else:
            value = [_maybe(cell.get(w, {}).get("value")) for w in warehouses]
            _hbars(ax, warehouses, {currency: value}, [color],
                   _priced(currency))
            ax.set_title(f"value in {currency}", fontsize=11)
            ax.set_xlabel(f"value at average cost ({currency})")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # narrow panels: few, wide labels
        ax.margins(x=0.45)  # the money labels are long
    return fig
