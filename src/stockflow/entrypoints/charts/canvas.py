"""What every chart shares: its size, its palette, its frame (title, note, legend below),
the "no data" picture, unit labels, and writing the PNG.

Drawn with matplotlib's object API on the Agg canvas, never `pyplot`: pyplot keeps the
current figure in global state, which leaks memory in a long-lived process and races
between threads; a `Figure` of our own does neither and needs no display. Every chart is
1,200 pixels wide and 600 high (a chart of two panels one above the other, 800), notes
under the plot, legends outside the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure

__all__ = ["DEMAND", "FORECAST", "HISTORY", "LOST", "NOTE_COLOR", "NOTE_SIZE", "ON_HAND",
           "ON_ORDER", "POSITION", "ROP", "SAFETY", "TALL", "figure", "legend_below", "no_data",
           "save", "units_text"]

WIDTH, HEIGHT, TALL = 12.0, 6.0, 8.0  # inches; at DPI, 1,200 x 600 (or 800) pixels
DPI = 100
NOTE_SIZE, NOTE_COLOR = 9, "dimgray"
# history bars pale, so the forecast, on-hand and reorder lines drawn over them stand out
HISTORY, DEMAND, LOST = "#a6bddb", "#4c72b0", "#c44e52"
FORECAST, ON_HAND = "#dd8452", "#2e8b57"
ROP, SAFETY = "#8c1c13", "#8172b3"
# the position blue and on order's amber of the Okabe-Ito palette: apart from the green
# and the reds for any colour vision
POSITION, ON_ORDER = "#0072b2", "#e69f00"


def units_text(v: float, _pos: int | None = None) -> str:
    """1,234 for whole numbers, 0.25 for the small fractions of slow movers' axes."""
    text = f"{v:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def figure(title: str, note: str | None = None, *, height: float = HEIGHT) -> SubFigure:
    """A chart's drawing area, between its title and its note, `height` inches high. The
    constrained layout stacks a figure's title and note with the legends of a subfigure,
    never with its own (they would overlap), hence the subfigure."""
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize=14, fontweight="bold")
    if note:
        fig.supxlabel(note, fontsize=NOTE_SIZE, color=NOTE_COLOR)
    return fig.add_subfigure(fig.add_gridspec()[0])


def save(chart: SubFigure, path: Path | BinaryIO) -> None:
    """Draw the chart as a PNG, into the file at `path` (or a binary stream)."""
    FigureCanvasAgg(chart.figure)  # attaches itself to the figure: no backend, no display
    chart.figure.savefig(path, format="png", dpi=DPI)


def no_data(path: Path | BinaryIO, title: str, why: str) -> None:
    """A chart that says there was no data, and why."""
    # an empty period is an answer too: the file exists and says so, rather than a
    # blank image or a missing file that looks like a failure
    fig = figure(title)
    ax = fig.add_subplot()
    ax.set_facecolor("#f2f2f2")
    ax.set(xticks=[], yticks=[])
    ax.text(0.5, 0.55, "no data", ha="center", va="center", fontsize=40, color="gray",
            transform=ax.transAxes)
    ax.text(0.5, 0.4, why, ha="center", va="center", fontsize=12, color="dimgray",
            transform=ax.transAxes)
    save(fig, path)


def legend_below(fig: SubFigure, handles: Sequence[Any], columns: int) -> None:
    """The chart's legend below its plot, in `columns` columns."""
    fig.legend(handles=list(handles), loc="outside lower center", ncols=columns,
               frameon=False)
