"""The backtest chart: how accurate each model was on the held-out window (MASE), how often
the intervals held the actuals, and the service level the reorder levels would have kept
there, side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import SubFigure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from stockflow.entrypoints.charts.canvas import (
    DEMAND,
    FORECAST,
    NOTE_COLOR,
    NOTE_SIZE,
    ON_HAND,
    figure,
    no_data,
    save,
)
from stockflow.planning.forecast import BASELINE, Backtest

__all__ = ["Service", "backtest_chart", "backtest_figure"]

# (class, service-level target) -> (held-out cycles kept free of a stock-out, cycles)
Service = Mapping[tuple[str, float], tuple[int, int]]

_NOMINAL = "#bbbbbb"  # what was promised: the nominal cover, the target


def backtest_chart(path: Path, summary: Backtest, service: Service) -> None:
    """Write the backtest's chart as a PNG at `path` (see `backtest_figure`)."""
    if not summary.mase and not summary.coverage:
        no_data(path, _TITLE, "no key had enough history for a backtest")
        return
    save(backtest_figure(summary, service), path)


_TITLE = "Forecast backtest on the held-out window: accuracy and service level"


def backtest_figure(summary: Backtest, service: Service) -> SubFigure:
    """Each model's held-out MASE for smooth and intermittent keys with the chosen models'
    beside them; the intervals' coverage against nominal; and per class and target, the
    share of held-out replenishment cycles the reorder level kept free of a stock-out."""
    fig = figure(_TITLE, "MASE: mean absolute error over the seasonal naive's in-sample "
                         "error; below 1 is better than repeating last week. chosen: each "
                         "key's selected model.\nService level: keys whose demand over lead "
                         "time + review in the held-out window stayed within the level the "
                         "reorder rule would have set at its start.")
    mase, coverage, kept = fig.subplots(1, 3, width_ratios=(2.6, 1, 1.2))
    _mase_panel(mase, summary)
    _coverage_panel(coverage, summary.coverage)
    _service_panel(kept, service)
    return fig


def _mase_panel(ax: Axes, summary: Backtest) -> None:
    classes = {"smooth": DEMAND, "intermittent": FORECAST}
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
            ax.bar_label(bars, labels=[f"{value:.2f}"], padding=2, fontsize=7)
        if model == "chosen":
            ax.axvspan(x - 0.5, x + 0.5, color="#fff3c4", zorder=0)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(models)), [_model_label(m, summary.chosen) for m in models],
                  fontsize=8)
    for tick, model in zip(ax.get_xticklabels(), models, strict=True):
        if model == "chosen":
            tick.set_fontweight("bold")
    ax.set_ylabel("MASE (1.0 = seasonal naive in sample)")
    top = max([1.0, *(v for m in summary.mase.values() for v in m.values())])
    ax.set_ylim(0, top * 1.3)  # the legend's row sits above the tallest bar
    ax.set_xlabel("model, and how many keys chose it", fontsize=9)
    ax.set_title("accuracy: error per model, held out", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=[Patch(color=c, label=f"{cls} ({summary.keys.get(cls, 0):,} keys)")
                       for cls, c in classes.items()]
              + [Patch(facecolor="white", edgecolor="gray", hatch="//", label="baseline")],
              loc="upper center", ncols=3, fontsize=8)


def _model_label(model: str, chosen: dict[str, int]) -> str:
    if model == "chosen":
        return "chosen\n(per key)"
    name = model.replace("_", "_\n", 1) if len(model) > 9 else model  # fits its bar group
    base = f"{name}\n(baseline)" if model == BASELINE else name
    return f"{base}\n{chosen.get(model, 0):,} keys"


def _paired(ax: Axes, labels: list[str], promised: list[float], held: list[float],
            names: tuple[str, str]) -> None:
    """Bars of what was promised (grey) and what held out (green), labelled in percent."""
    width = 0.38
    xs = range(len(labels))
    nominal = ax.bar([x - width / 2 for x in xs], promised, width, color=_NOMINAL,
                     label=names[0])
    actual = ax.bar([x + width / 2 for x in xs], held, width, color=ON_HAND, label=names[1])
    for bars in (nominal, actual):
        ax.bar_label(bars, labels=[_percent(b.get_height()) for b in bars], padding=2,
                     fontsize=8)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.18)
    ax.legend(loc="upper left", fontsize=8, ncols=2)


def _percent(share: float) -> str:
    """95% for a whole percent, 93.8% otherwise: a target reads as it was set."""
    return f"{share:.1%}".replace(".0%", "%")


def _coverage_panel(ax: Axes, coverage: dict[int, float]) -> None:
    levels = sorted(coverage)
    _paired(ax, [f"{lv}% interval" for lv in levels], [lv / 100 for lv in levels],
            [coverage[lv] for lv in levels], ("nominal", "held out"))
    ax.set_ylabel("actual days inside the interval")
    ax.set_title("interval coverage", fontsize=11)


def _service_panel(ax: Axes, service: Service) -> None:
    groups = sorted(service, key=lambda g: (g[0] != "smooth", g[1]))
    checked = [g for g in groups if service[g][1] > 0]
    _paired(ax, [f"{cls}: {service[cls, target][1]:,} keys\n{target:.0%} target"
                 for cls, target in checked], [target for _, target in checked],
            [service[g][0] / service[g][1] for g in checked], ("target", "held out"))
    if not checked:
        ax.text(0.5, 0.5, "no key's held-out window\ncovers its lead time\nand review",
                ha="center", va="center", transform=ax.transAxes, fontsize=NOTE_SIZE,
                color=NOTE_COLOR)
    ax.set_ylabel("replenishment cycles without a stock-out")
    ax.set_title("service level, held out", fontsize=11)
