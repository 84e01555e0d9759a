"""The reports' charts: stock by warehouse, the low list and valuation here, movements in
`movements`. Money arrives as `Decimal` and becomes a float only to be drawn."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from matplotlib.axes import Axes
from matplotlib.figure import SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from stockflow.entrypoints.charts.canvas import (
    DEMAND,
    FORECAST,
    LOST,
    ON_HAND,
    ROP,
    SAFETY,
    figure,
    legend_below,
    no_data,
    save,
    units_text,
)
from stockflow.entrypoints.charts.movements import Moved, movements_figure

__all__ = ["Moved", "report_chart", "report_figure"]

_MAX_ROWS = 30  # bars beyond this are too thin to label; the table has them all
_LABELLED_BARS = 24  # value labels on at most this many bars, or they overlap
_SEVERITY = {"out_of_stock": LOST, "low": FORECAST}


def _money(v: float) -> str:
    return f"{v:,.2f}"


def _priced(currency: str) -> Callable[[float], str]:
    return lambda v: f"{_money(v)} {currency}"


def _maybe(v: Any) -> float | None:
    return None if v is None else float(v)


def _num(v: Any) -> float:
    """A report cell as a float to add up; None (no such figure) as 0."""
    return 0.0 if v is None else float(v)



def report_chart(path: Path | BinaryIO, report: str, rows: list[dict[str, Any]], title: str,
                 moved: Moved | None = None) -> None:
    """Write the chart of `report` as a PNG at `path`, or into a binary stream (see
    `report_figure`)."""
    if not rows:
        no_data(path, title, "the report has no rows for these filters")
        return
    save(report_figure(report, rows, title, moved), path)


def report_figure(report: str, rows: list[dict[str, Any]], title: str,
                  moved: Moved | None = None) -> SubFigure:
    """The chart of `report` ("stock", "movements" or "valuation"; the stock report's low
    list is told by its `key` column) from its `rows`, titled `title`; the movements
    chart also draws `moved`, read over the same period."""
    if report == "movements":
        if moved is None:
            raise ValueError("the movements chart needs the lost demand and the currencies")
        return movements_figure(rows, title, moved)
    draw: Callable[[list[dict[str, Any]], str], SubFigure]
    if report == "stock":
        draw = _low if "key" in rows[0] else _stock
    elif report == "valuation":
        draw = _valuation
    else:
        raise ValueError(f"report: stock, movements or valuation; got {report!r}")
    return draw(rows, title)


def _hbars(ax: Axes, labels: Sequence[str], series: dict[str, list[float | None]],
           colors: Sequence[str], fmt: Callable[[float], str] = units_text) -> None:
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
    ax.xaxis.set_major_formatter(FuncFormatter(units_text))
    ax.margins(x=0.12)  # room for the value labels
    ax.grid(axis="x", alpha=0.3)


def _clipped(rows: list[dict[str, Any]], what: str) -> str:
    return (f"the first {_MAX_ROWS} of {len(rows):,} {what}; the table lists them all"
            if len(rows) > _MAX_ROWS else "")


def _stock(rows: list[dict[str, Any]], title: str) -> SubFigure:
    fig = figure(title, _clipped(rows, "warehouses") or None)
    rows = rows[:_MAX_ROWS]
    units, alerts = fig.subplots(1, 2, sharey=True, width_ratios=(3, 1))
    labels = [f"{r['warehouse']}\n{r['keys']:,} keys" for r in rows]
    _hbars(units, labels, {c.replace("_", " "): [_num(r[c]) for r in rows]
                           for c in ("on_hand", "reserved", "available")},
           (DEMAND, SAFETY, ON_HAND))
    units.set_xlabel("units")
    units.set_title("stock", fontsize=11)
    _hbars(alerts, labels, {"low": [_num(r["low"]) for r in rows],
                            "out of stock": [_num(r["out_of_stock"]) for r in rows]},
           (_SEVERITY["low"], _SEVERITY["out_of_stock"]))
    alerts.set_xlabel("keys")
    alerts.set_title("low and out-of-stock keys", fontsize=11)
    legend_below(fig, units.get_legend_handles_labels()[0]
                  + alerts.get_legend_handles_labels()[0], columns=5)
    return fig


def _low(rows: list[dict[str, Any]], title: str) -> SubFigure:
    fig = figure(title, _clipped(rows, "keys (out of stock first, then by available)")
                  or None)
    rows = rows[:_MAX_ROWS]
    ax = fig.add_subplot()
    ys = range(len(rows))
    available = [_num(r["available"]) for r in rows]
    colors = [_SEVERITY.get(str(r["severity"]), "gray") for r in rows]
    bars = ax.barh(ys, available, height=0.7, color=colors)
    ax.bar_label(bars, labels=[units_text(v) for v in available], padding=3, fontsize=8)
    for column, marker, color in (("reorder_point", "|", ROP), ("safety_stock", "|", SAFETY)):
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
    ax.xaxis.set_major_formatter(FuncFormatter(units_text))
    ax.set_xlabel("units available (on hand less reserved)")
    ax.grid(axis="x", alpha=0.3)
    legend_below(fig, [
        Patch(color=_SEVERITY["out_of_stock"], label="out of stock"),
        Patch(color=_SEVERITY["low"], label="low"),
        Line2D([], [], marker="|", linestyle="", markersize=14, markeredgewidth=2.5,
               color=ROP, label="reorder point"),
        Line2D([], [], marker="|", linestyle="", markersize=14, markeredgewidth=2.5,
               color=SAFETY, label="safety stock")], columns=4)
    return fig


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
    fig = figure(title, "; ".join(notes) or None)
    warehouses = warehouses[:_MAX_ROWS]
    panels: list[str | None] = [*shown, *([None] if uncosted else [])]
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, currency, color in zip(axes, panels, (DEMAND, ON_HAND, SAFETY, "#999999"),
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
