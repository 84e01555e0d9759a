"""The movements report's chart: units moved per warehouse by event type, in and out, with
the demand turned away beside them, and the net value at cost in its currency."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import SubFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from stockflow.entrypoints.charts.canvas import (
    LOST,
    NOTE_COLOR,
    NOTE_SIZE,
    ON_HAND,
    figure,
    legend_below,
    units_text,
)

__all__ = ["Moved", "moved_types", "movements_figure", "type_styles", "value_axis"]

_MAX_ROWS = 30  # warehouses beyond this are too thin to label; the table has them all
# Paul Tol's "muted" scheme: nine colours told apart with any colour vision. Each type
# keeps its colour from one chart to the next; lost demand takes the ninth.
_TYPE_COLOURS = {
    "shipment.dispatched": "#332288", "receipt.received": "#117733",
    "transfer.dispatched": "#88ccee", "transfer.received": "#44aa99",
    "return.received": "#ddcc77", "stock.adjusted": "#999933", "stock.counted": "#aa4499",
    "stock.damaged": "#882255"}
_LOST_DEMAND = "#cc6677"
_OTHER, _HATCHES = "#dddddd", ("//", "\\\\", "xx", "..", "++", "oo")  # types not listed
_LABEL_SHARE = 0.05  # a segment narrower than this share of the axis goes unlabelled


@dataclass(frozen=True)
class Moved:
    """What the movements chart shows beyond the report's rows, over the same period."""

    lost: dict[str, int]  # warehouse -> units of demand turned away
    net_value: dict[tuple[str, str], Decimal]  # (warehouse, currency) -> net value at cost


def moved_types(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The event types that moved units, the busiest first; types whose movements moved
    none (reservations, thresholds, purchase orders) are left out."""
    volume: dict[str, float] = {}
    for r in rows:
        volume[r["event_type"]] = (volume.get(r["event_type"], 0.0) + _num(r["units_in"])
                                   + _num(r["units_out"]))
    return sorted((t for t, v in volume.items() if v > 0), key=lambda t: -volume[t])


def type_styles(types: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Each type's colour and hatch: its own colour, else pale grey with a hatch of its
    own, so no two types look alike."""
    hatches = itertools.cycle(_HATCHES)
    return {t: (_TYPE_COLOURS[t], None) if t in _TYPE_COLOURS else (_OTHER, next(hatches))
            for t in types}


def value_axis(currencies: Sequence[str]) -> str:
    """The net value axis's label, naming the currency the values are in."""
    if not currencies:
        return "net value at cost"
    if len(currencies) == 1:
        return f"net value at cost ({currencies[0]})"
    return f"net value at cost, per currency ({', '.join(currencies)}: not added together)"


def _num(v: Any) -> float:
    """A report cell as a float to add up; None (no such figure) as 0."""
    return 0.0 if v is None else float(v)


def _ink(colour: str) -> str:
    """Black or white, whichever reads on `colour` (a #rrggbb)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


def movements_figure(rows: list[dict[str, Any]], title: str, moved: Moved) -> SubFigure:
    """The movements chart of the report's `rows` (warehouse by event type) and `moved`."""
    warehouses = list(dict.fromkeys(str(r["warehouse"]) for r in rows))
    types = moved_types(rows)
    counts: dict[str, float] = {}
    for r in rows:
        if r["event_type"] not in types:
            counts[r["event_type"]] = counts.get(r["event_type"], 0.0) + _num(r["movements"])
    notes = [f"the first {_MAX_ROWS} of {len(warehouses):,} warehouses; the table lists "
             "them all" if len(warehouses) > _MAX_ROWS else "",
             "left out, no units moved: " + ", ".join(
                 f"{t} ({units_text(n)} movement{'s' * (n != 1)})" for t, n in counts.items())
             if counts else ""]
    fig = figure(title, "; ".join(n for n in notes if n) or None)
    warehouses = warehouses[:_MAX_ROWS]
    units, money = fig.subplots(1, 2, sharey=True, width_ratios=(2.4, 1))
    _moved_units(units, rows, warehouses, types, moved.lost)
    total = {w: sum(_num(r["movements"]) for r in rows if r["warehouse"] == w)
             for w in warehouses}
    units.set_yticks(range(len(warehouses)),
                     [f"{w}\n{units_text(total[w])} movements" for w in warehouses])
    units.set_ylim(len(warehouses) - 0.5, -0.5)
    _net_value(money, warehouses, moved.net_value)
    handles, _ = units.get_legend_handles_labels()
    legend_below(fig, handles, columns=min(len(handles), 5))
    return fig


def _moved_units(ax: Axes, rows: list[dict[str, Any]], warehouses: list[str],
                 types: list[str], lost: dict[str, int]) -> None:
    """Units in to the right of zero and out to the left, a segment per event type (the
    busiest nearest zero), each labelled where it is wide enough, the totals at the ends;
    under each, the demand turned away, apart: it is demand, not a movement."""
    cell = {(str(r["warehouse"]), str(r["event_type"])): r for r in rows}
    ins = {t: [_num(cell.get((w, t), {}).get("units_in")) for w in warehouses] for t in types}
    outs = {t: [_num(cell.get((w, t), {}).get("units_out")) for w in warehouses] for t in types}
    into = [sum(v[i] for v in ins.values()) for i in range(len(warehouses))]
    out = [sum(v[i] for v in outs.values()) for i in range(len(warehouses))]
    turned = [float(lost.get(w, 0)) for w in warehouses]
    span = max([1.0, *into]) + max([1.0, *out, *turned])
    ys = [y - 0.08 for y in range(len(warehouses))]
    left_in, left_out = [0.0] * len(warehouses), [0.0] * len(warehouses)
    for t, (colour, hatch) in type_styles(types).items():
        for values, left, sign, name in ((ins[t], left_in, 1, t), (outs[t], left_out, -1, None)):
            bars = ax.barh(ys, [sign * v for v in values], left=left, height=0.55,
                           color=colour, hatch=hatch, edgecolor="white", linewidth=0.5,
                           label=name)
            ax.bar_label(bars, labels=[units_text(v) if v >= _LABEL_SHARE * span else ""
                                       for v in values], label_type="center", fontsize=7,
                         color=_ink(colour))
            left[:] = [a + sign * v for a, v in zip(left, values, strict=True)]
    for y, a, b in zip(ys, into, out, strict=True):
        if a:
            ax.annotate(f"in {units_text(a)}", (a, y), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        if b:
            ax.annotate(f"out {units_text(b)}", (-b, y), xytext=(-3, 0),
                        textcoords="offset points", va="center", ha="right", fontsize=8)
    if any(turned):
        bars = ax.barh([y + 0.42 for y in ys], [-v for v in turned], height=0.22,
                       color=_LOST_DEMAND, hatch="xx", edgecolor="white", linewidth=0.5,
                       label="lost demand: turned away,\nnot shipped (not a movement)")
        ax.bar_label(bars, labels=[f"{units_text(v)} lost" if v else "" for v in turned],
                     padding=3, fontsize=7, color=_LOST_DEMAND)
    ax.axvline(0, color="black", linewidth=0.8)
    # room for the totals at either end (margins would stop at the bars' sticky edges)
    ax.set_xlim(-max([1.0, *out, *turned]) * 1.35, max([1.0, *into]) * 1.35)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: units_text(abs(v))))
    ax.set_xlabel("units  \u2190 out  |  in \u2192")
    ax.set_title("units moved by event type", fontsize=11)
    ax.grid(axis="x", alpha=0.3)


def _net_value(ax: Axes, warehouses: list[str], net: dict[tuple[str, str], Decimal]) -> None:
    """Net value at cost per warehouse, a bar per currency, each labelled in it."""
    currencies = sorted({c for w, c in net if w in warehouses})
    height = 0.55 / max(1, len(currencies))
    for i, currency in enumerate(currencies):
        values = [float(net[w, currency]) if (w, currency) in net else None
                  for w in warehouses]
        ys = [y - 0.08 - 0.275 + height * (i + 0.5) for y in range(len(warehouses))]
        drawn = [(y, v) for y, v in zip(ys, values, strict=True) if v is not None]
        bars = ax.barh([y for y, _ in drawn], [v for _, v in drawn], height=height * 0.9,
                       color=[ON_HAND if v >= 0 else LOST for _, v in drawn])
        ax.bar_label(bars, labels=[f"{v:,.2f} {currency}" for _, v in drawn], padding=3,
                     fontsize=7)
    if not currencies:
        ax.text(0.5, 0.5, "no costed movements", ha="center", va="center",
                transform=ax.transAxes, fontsize=NOTE_SIZE, color=NOTE_COLOR)
    ax.margins(x=0.6)  # room for the money labels, on either side of zero
    ax.axvline(0, color="black", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=3))  # a narrow panel: few, wide labels
    ax.xaxis.set_major_formatter(FuncFormatter(units_text))
    ax.set_xlabel(value_axis(currencies))
    ax.set_title("net value" + (f" ({currencies[0]})" if len(currencies) == 1 else ""),
                 fontsize=11)
    ax.grid(axis="x", alpha=0.3)
