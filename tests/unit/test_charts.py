"""The charts, drawn from synthetic data and opened as images: each is a PNG of a readable
size with real content, the forecast chart shows what its key's data says (lost demand
only when there was some, another key another picture; the reorder point and safety stock
in a panel of their own, from the day they were set and not before; the position, on
order, lead time and suggestion from today), the backtest chart shows the service level
held out beside the accuracy (and that level is judged as a buyer would), the movements
chart labels its values, leaves out the types that moved nothing, tells each type by its
colour, shows the demand turned away and the currency of its values, and `report --plot`
refuses a path it could not write to before any query runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from stockflow.adapters.db.demand import Position, ThresholdChange, known_values
from stockflow.entrypoints import report_cli
from stockflow.entrypoints.charts import (
    Applied,
    ForecastView,
    Moved,
    Plan,
    backtest_chart,
    forecast_chart,
    report_chart,
    thresholds_drawn,
)
from stockflow.entrypoints.charts.backtest import backtest_figure
from stockflow.entrypoints.charts.forecast import forecast_figure, threshold_steps
from stockflow.entrypoints.charts.movements import moved_types, type_styles, value_axis
from stockflow.entrypoints.charts.reports import report_figure
from stockflow.planning.forecast import Backtest, KeyForecast, Kind
from stockflow.planning.reorder import Outlook, Suggestion
from stockflow.usecases.forecasting import Forecasts, Planned, held_out_service
from tests.images import assert_meaningful_png as pixels

edge: Callable[[date], float] = mdates.date2num  # untyped in matplotlib
LOST_RED = (0xC4, 0x4E, 0x52)  # the lost-demand bars' colour, drawn flat inside the bars


def has_colour(rgb: npt.NDArray[np.uint8], colour: tuple[int, int, int]) -> bool:
    return bool(np.all(rgb == np.array(colour, dtype=np.uint8), axis=2).sum() > 50)


def view(key: str = "SKU-1@WH-1", days: int = 200, *, lost: bool = True, weekly: float = 12,
         thresholds: bool = True, horizon: int = 28) -> ForecastView:
    start = date(2026, 1, 5)
    demand = [max(0.0, 30 + weekly * math.sin(i * 2 * math.pi / 7)) for i in range(days)]
    turned_away = [6.0 if lost and i % 17 == 0 else 0.0 for i in range(days)]
    on_hand, on_order, held, ordered = [], [], 900.0, 0.0
    for i, d in enumerate(demand):
        if held - d <= 300 and not ordered:
            ordered = 1200.0  # ordered at the reorder point, received a week later
        held -= d
        if ordered and i % 7 == 6:
            held, ordered = held + ordered, 0.0
        on_hand.append(held)
        on_order.append(ordered)
    mean = [30 + weekly * math.sin((days + i) * 2 * math.pi / 7) for i in range(horizon)]
    return ForecastView(
        key=key, model="auto_ets", days=[start + timedelta(days=i) for i in range(days)],
        demand=demand, lost=turned_away, on_hand=on_hand,
        position=[h + o for h, o in zip(on_hand, on_order, strict=True)], on_order=on_order,
        mean=mean,
        intervals={80: ([max(0.0, m - 8) for m in mean], [m + 8 for m in mean]),
                   95: ([max(0.0, m - 14) for m in mean], [m + 14 for m in mean])},
        applied=[Applied(start + timedelta(days=days - 30), 420.0, 160.0)] if thresholds else [],
        unrecorded=[start + timedelta(days=days - 80)] if thresholds else [],
        plan=Plan(available=350, in_transit=0, on_order=0, level=760, safety_stock=120,
                  suggested=410, lead_time_days=7, review_days=7, service_level=0.95)
        if thresholds else None)


def test_the_forecast_chart_marks_lost_demand_only_when_some_was_turned_away(
        tmp_path: Path) -> None:
    forecast_chart(tmp_path / "lost.png", view(lost=True))
    forecast_chart(tmp_path / "none.png", view(lost=False))
    assert has_colour(pixels(tmp_path / "lost.png"), LOST_RED)
    assert not has_colour(pixels(tmp_path / "none.png"), LOST_RED)


def test_the_forecast_chart_draws_without_thresholds_or_a_suggestion(tmp_path: Path) -> None:
    with_rop, without = tmp_path / "rop.png", tmp_path / "no-rop.png"
    forecast_chart(with_rop, view(lost=False))
    forecast_chart(without, view(lost=False, thresholds=False))
    assert not np.array_equal(pixels(with_rop), pixels(without))
    stock = forecast_figure(view(thresholds=False)).axes[1]
    assert "no reorder suggestion computed" in stock.get_title(loc="left")
    assert not [t for t in legend(stock) if "reorder point" in t or "safety stock" in t]


def test_another_keys_data_draws_another_picture(tmp_path: Path) -> None:
    forecast_chart(tmp_path / "a.png", view("SKU-1@WH-1"))
    forecast_chart(tmp_path / "b.png", view("SKU-2@WH-1", days=60, weekly=3, horizon=14))
    a, b = pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png")
    assert a.shape == b.shape
    assert np.any(a != b, axis=2).mean() > 0.05  # a different picture, not a retitled one


def test_a_short_history_and_a_key_without_any_are_still_drawn(tmp_path: Path) -> None:
    forecast_chart(tmp_path / "short.png", view(days=20, horizon=7))
    pixels(tmp_path / "short.png")
    empty = ForecastView("NEW@WH-1", "weekday_avg", [], [], [], [], [], [], [], {})
    forecast_chart(tmp_path / "empty.png", empty)
    pixels(tmp_path / "empty.png")


D = date(2026, 3, 1)


def day(n: int) -> date:
    return D + timedelta(days=n)


@pytest.mark.parametrize(("applied", "start", "end", "steps"), [
    ([], day(0), day(30), []),
    # nothing before the first set: its step starts on its day, not at the window's start
    ([Applied(day(10), 40, 5)], day(0), day(30), [Applied(day(10), 40, 5)]),
    # a step from each change, each value from its own day
    ([Applied(day(10), 40, 5), Applied(day(20), 60, 8)], day(0), day(30),
     [Applied(day(10), 40, 5), Applied(day(20), 60, 8)]),
    # set before the window: in force from its start; replaced before it: not drawn
    ([Applied(day(-20), 20, 0), Applied(day(-5), 30, 2), Applied(day(12), 50, 4)], day(0),
     day(30), [Applied(day(0), 30, 2), Applied(day(12), 50, 4)]),
    # set today or later: not in force over the past
    ([Applied(day(30), 70, 9)], day(0), day(30), []),
    # two set on the same day: the one applied last holds; the order given does not matter
    ([Applied(day(20), 60, 8), Applied(day(5), 10, 0), Applied(day(20), 65, 8)], day(0),
     day(30), [Applied(day(5), 10, 0), Applied(day(20), 65, 8)]),
], ids=["none", "one", "two", "before-the-window", "today", "same-day"])
def test_thresholds_are_steps_from_when_they_were_set(
        applied: list[Applied], start: date, end: date, steps: list[Applied]) -> None:
    assert threshold_steps(applied, start, end) == steps


def legend(ax: Axes) -> list[str]:
    shown = ax.get_legend()
    return [t.get_text() for t in shown.get_texts()] if shown else []


def lines(ax: Axes, starting: str) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(starting)]


def test_the_reorder_point_and_safety_stock_have_their_own_panel_from_when_they_applied(
        ) -> None:
    v = view()
    demand, stock = forecast_figure(v).axes
    # the demand panel: units a day, the forecast and its intervals; no threshold there
    assert "units a day" in demand.get_ylabel() and "units held" in stock.get_ylabel()
    assert not [t for t in legend(demand) if "reorder" in t or "safety" in t or "level" in t]
    assert {"forecast", "80% interval", "95% interval"} <= set(legend(demand))
    # in force: steps from the day they were set (30 days ago) to today, not before
    since, today = edge(v.applied[0].since) - 0.5, edge(
        v.days[-1] + timedelta(days=1)) - 0.5
    for name, value in (("reorder point in force", 420), ("safety stock in force", 160)):
        (line,) = lines(stock, name)
        xs, ys = (np.asarray(a, dtype=float) for a in line.get_data())
        assert xs.min() == since and xs.max() == today
        assert set(ys) == {value}
    assert "reorder point in force (420 now)" in legend(stock)
    # a change whose values the ledger does not keep is a mark on its day, not a value
    assert "thresholds set here\n(values not recorded)" in legend(stock)
    marked = edge(v.unrecorded[0]) - 0.5
    assert [ln for ln in stock.get_lines()
            if np.asarray(ln.get_xdata(), dtype=float).tolist() == [marked, marked]]


def test_recorded_thresholds_give_each_change_its_values() -> None:
    """Migration 0021 keeps each applied change's values and the ones it replaced: the
    first recorded change also tells what the change before it set (the defaults a key
    started with, or a change from before the table), the stock row what the last one set;
    changes older still are known only by when."""
    t = [datetime(2026, 3, d, 9, tzinfo=UTC) for d in (1, 5, 9, 20, 25)]
    # t0 first movement, t1 set before the table existed, t2 also (replaced by t3),
    # t3 and t4 recorded
    changes = [(t[0], None), (t[1], None), (t[2], None), (t[3], (40, 5, 25, 2)),
               (t[4], (60, 8, 40, 5))]
    assert known_values(changes, (60, 8)) == [
        ThresholdChange(t[0], None, None), ThresholdChange(t[1], None, None),
        ThresholdChange(t[2], 25, 2), ThresholdChange(t[3], 40, 5), ThresholdChange(t[4], 60, 8)]
    # a new key's defaults are the values the first change replaced
    assert known_values([(t[0], None), (t[1], (30, 0, 10, 0))], (30, 0)) == [
        ThresholdChange(t[0], 10, 0), ThresholdChange(t[1], 30, 0)]
    # nothing recorded at all: the last change's values are the stock row's, as before
    assert known_values([(t[0], None), (t[1], None)], (7, 1)) == [
        ThresholdChange(t[0], None, None), ThresholdChange(t[1], 7, 1)]
    assert known_values([(t[0], None)], (10, 0)) == [ThresholdChange(t[0], 10, 0)]


def test_the_chart_draws_the_known_steps_and_marks_the_rest() -> None:
    d = [date(2026, 3, n) for n in (1, 5, 9, 20, 25)]
    # unknown before the third change: marks up to the last unknown one, steps after it
    assert thresholds_drawn([(d[0], None, None), (d[1], None, None), (d[2], 25, 2),
                             (d[3], 40, 5), (d[4], 60, 8)]) == (
        [Applied(d[2], 25, 2), Applied(d[3], 40, 5), Applied(d[4], 60, 8)], d[:2])
    # all known: every change a step from its day, no mark
    assert thresholds_drawn([(d[0], 10, 0), (d[1], 30, 0)]) == (
        [Applied(d[0], 10, 0), Applied(d[1], 30, 0)], [])
    # a known one before an unknown one (values written, then a processor that did not
    # write them): a step would run across the unknown change, so it is a mark too
    assert thresholds_drawn([(d[0], 10, 0), (d[1], None, None), (d[2], 30, 0)]) == (
        [Applied(d[2], 30, 0)], d[:2])
    assert thresholds_drawn([]) == ([], [])


def test_every_recorded_change_is_a_step_of_its_own_value() -> None:
    v = view()
    start = v.days[0]
    applied, marks = thresholds_drawn([(start + timedelta(days=n), rp, ss) for n, rp, ss in (
        (60, 10, 0), (150, 300, 100), (185, 420, 160))])
    stock = forecast_figure(replace(v, applied=applied, unrecorded=marks)).axes[1]
    today = edge(v.days[-1] + timedelta(days=1)) - 0.5
    first_shown = edge(v.days[-120]) - 0.5  # 120 of 200 days shown: the first from there
    (rop,) = lines(stock, "reorder point in force")
    xs, ys = (np.asarray(a, dtype=float).tolist() for a in rop.get_data())
    assert xs == [first_shown, edge(start + timedelta(days=150)) - 0.5,
                  edge(start + timedelta(days=185)) - 0.5, today]
    assert ys == [10, 300, 420, 420]
    (safety,) = lines(stock, "safety stock in force")
    assert np.asarray(safety.get_ydata(), dtype=float).tolist() == [0, 100, 160, 160]
    assert "thresholds set here\n(values not recorded)" not in legend(stock)
    # the whole figure's note, under the chart: no word of values not recorded
    assert stock.figure.figure.get_supxlabel().endswith("from the day they were set")


def test_the_stock_panel_shows_position_on_order_lead_time_and_the_suggestion() -> None:
    v = view()
    stock = forecast_figure(v).axes[1]
    shown = "\n".join(legend(stock))
    for told in ("on hand", "position: available + in transit", "on order (purchase orders)",
                 "lead time: 7 d", "review period: 7 d", "suggested level (760)",
                 "safety stock within it (120)",
                 "position today (350): available 350\n+ in transit 0 + on order 0"):
        assert told in shown, told
    assert [t.get_text() for t in stock.texts if t.get_text().startswith("order ")] == [
        "order 410"]
    # the lead time spans from today to the day an order placed today arrives, the level
    # from today over the lead time and the review period it covers
    today = edge(v.days[-1] + timedelta(days=1)) - 0.5
    (span,) = [p for p in stock.patches if str(p.get_label()).startswith("lead time")]
    assert isinstance(span, Rectangle)
    assert (span.get_x(), span.get_x() + span.get_width()) == (today, today + 7)
    (level,) = [c for c in stock.collections if isinstance(c, LineCollection)
                and str(c.get_label()).startswith("suggested level")]
    assert [s.tolist() for s in level.get_segments()] == [[[today, 760], [today + 14, 760]]]


def test_thresholds_set_today_are_named_not_drawn_over_the_past() -> None:
    v = view()
    today = v.days[-1] + timedelta(days=1)
    stock = forecast_figure(replace(v, applied=[*v.applied, Applied(today, 500, 0)])).axes[1]
    (line,) = lines(stock, "reorder point in force")  # the one before: until today
    assert set(np.asarray(line.get_ydata(), dtype=float)) == {420}
    assert "reorder point in force (420 until today)" in legend(stock)
    assert "reorder point 500, safety\nstock 0: set today" in legend(stock)
    alone = forecast_figure(replace(v, applied=[Applied(today, 500, 0)])).axes[1]
    assert not lines(alone, "reorder point in force")
    assert "reorder point 500, safety\nstock 0: set today" in legend(alone)


def test_with_nothing_to_order_the_chart_says_so() -> None:
    v = view()
    assert v.plan is not None
    full = replace(v, plan=replace(v.plan, available=800, suggested=0))
    texts = [t.get_text() for t in forecast_figure(full).axes[1].texts]
    assert "nothing to order: the position\nis at or above the level" in texts
    assert not [t for t in texts if t.startswith("order ")]


def test_the_backtest_chart(tmp_path: Path) -> None:
    summary = Backtest(
        mase={"weekday_avg": {"smooth": 0.92, "intermittent": 0.81, "all": 0.88},
              "seasonal_naive": {"smooth": 1.12, "all": 1.12},
              "auto_ets": {"smooth": 0.78, "all": 0.78},
              "croston_sba": {"intermittent": 0.74, "all": 0.74},
              "tsb": {"intermittent": 0.76, "all": 0.76},
              "adida": {"intermittent": 0.79, "all": 0.79},
              "chosen": {"smooth": 0.80, "intermittent": 0.77, "all": 0.79}},
        wape={"chosen": {"smooth": 0.21, "intermittent": 0.55, "all": 0.3}},
        keys={"smooth": 7400, "intermittent": 2600, "all": 10000},
        chosen={"weekday_avg": 1500, "seasonal_naive": 300, "auto_ets": 5600,
                "croston_sba": 1200, "tsb": 900, "adida": 500},
        coverage={80: 0.77, 95: 0.93})
    service = {("smooth", 0.95): (4800, 5000), ("smooth", 0.9): (1900, 2000),
               ("intermittent", 0.95): (2440, 2600)}
    backtest_chart(tmp_path / "backtest.png", summary, service)
    pixels(tmp_path / "backtest.png")
    backtest_chart(tmp_path / "none.png", Backtest({}, {}, {}, {}, {}), {})
    pixels(tmp_path / "none.png")
    # the service level beside the accuracy: each class and target, against the target
    accuracy, _, kept = backtest_figure(summary, service).axes
    assert accuracy.get_title().startswith("accuracy") and kept.get_title().startswith(
        "service level")
    assert [t.get_text() for t in kept.get_xticklabels()] == [
        "smooth: 2,000 keys\n90% target", "smooth: 5,000 keys\n95% target",
        "intermittent: 2,600 keys\n95% target"]
    assert [t.get_text() for t in kept.texts] == ["90%", "95%", "95%", "95%", "96%", "93.8%"]
    assert legend(kept) == ["target", "held out"]
    assert "without a stock-out" in kept.get_ylabel()
    nothing = backtest_figure(summary, {}).axes[2]
    assert "no key's held-out window" in nothing.texts[0].get_text()


def planned(kind: Kind, recent: npt.NDArray[np.float64], last_error: float,
            lead_time: int = 7) -> Planned:
    """A key planned on a 14-day backtest of 4 windows, its held-out one's demand the last
    14 days of `recent`, its forecast there that less `last_error` a day."""
    errors = np.vstack([np.random.default_rng(1).normal(0, 1, (3, 14)),
                        np.full((1, 14), last_error)])
    outlook = Outlook([20.0] * 14, kind, errors, recent)
    forecast = KeyForecast("K", kind, "m", [20.0] * 14, {}, {}, 0.0, {}, {}, 1.0, outlook)
    return Planned(forecast, Position(0, 0, 0, 0, 10, 0),
                   Suggestion(lead_time, 7, 0.95, 140.0, 10, 300, 300, 0, 300))


def test_the_service_level_held_out_is_whether_the_level_set_then_covered_the_window() -> None:
    steady = np.full(200, 20.0)  # 280 units over the held-out window's 14 days
    spikes = np.where(np.arange(200) % 7 == 0, 5.0, 0.0)  # 10 units in any 14 days
    burst = spikes.copy()
    burst[-14:] = [0.0] * 13 + [30.0]
    keys = {
        # forecast 10 a day there: its level, 140 and a few units, falls short of 280
        "short": planned("smooth", steady, 10.0),
        # forecast 21 a day: 294 and more, enough
        "enough": planned("smooth", steady, -1.0),
        # lead time and review, 17 days, longer than the window: not judged
        "long": planned("smooth", steady, -1.0, lead_time=10),
        # the quantile of its 14-day sums before the window, 10 units: 30 is more
        "burst": planned("intermittent", burst, 30.0),
        "spikes": planned("intermittent", spikes, 0.0),  # its usual 10: covered
    }
    found = Forecasts(date(2026, 12, 3), date(2026, 5, 17), {}, {}, keys, {},
                      Backtest({}, {}, {}, {}, {}), 0.0, 0.0,
                      {(7, 0.95): 2.0, (10, 0.95): 2.0})
    assert held_out_service(found) == {("intermittent", 0.95): (1, 2),
                                       ("smooth", 0.95): (1, 2)}


STOCK: list[dict[str, Any]] = [
    {"warehouse": f"WH-{w}", "keys": 1200 + w, "on_hand": 154_000 * w, "reserved": 12_000 * w,
     "available": 142_000 * w, "in_transit": 3000, "damaged": 40, "low": 40 + w,
     "out_of_stock": w} for w in range(1, 4)]
LOW: list[dict[str, Any]] = [  # more than fit: the chart shows the first 30
    {"key": f"SKU-{i:05d}@WH-{i % 3 + 1}", "warehouse": f"WH-{i % 3 + 1}",
     "severity": "out_of_stock" if i < 6 else "low", "available": 0 if i < 6 else 3 * i,
     "reorder_point": 120 + i, "safety_stock": None if i % 5 == 0 else 40, "on_hand": 10,
     "reserved": 5} for i in range(40)]


def movement(warehouse: str, event_type: str, units_in: int, units_out: int,
             *, costed: bool = True) -> dict[str, Any]:
    value_in = Decimal(units_in) * Decimal("2.50") if costed and units_in else None
    value_out = Decimal(units_out) * Decimal("2.40") if costed and units_out else None
    return {"warehouse": warehouse, "event_type": event_type, "movements": 100,
            "units_in": units_in, "units_out": units_out, "net_units": units_in - units_out,
            "value_in": value_in, "value_out": value_out,
            "net_value": (value_in or 0) - (value_out or 0) if costed else None}


MOVES = (("receipt.received", 9000, 0), ("shipment.dispatched", 0, 7000),
         ("stock.adjusted", 40, 300), ("return.received", 250, 0))
MOVEMENTS = [movement(w, *m) for w in ("WH-1", "WH-2") for m in MOVES]
VALUATION: list[dict[str, Any]] = [
    {"warehouse": "WH-1", "currency": "EUR", "keys": 1000, "on_hand": 150_000,
     "value": Decimal("1234567.891234"), "average_unit_cost": Decimal("8.230452")},
    {"warehouse": "WH-1", "currency": "USD", "keys": 50, "on_hand": 2000,
     "value": Decimal("45000.10"), "average_unit_cost": Decimal("22.500050")},
    {"warehouse": "WH-1", "currency": None, "keys": 20, "on_hand": 900, "value": None,
     "average_unit_cost": None},
    {"warehouse": "WH-2", "currency": "EUR", "keys": 800, "on_hand": 99_000,
     "value": Decimal("876543.21"), "average_unit_cost": Decimal("8.853972")},
]


MOVED = Moved(lost={"WH-1": 1234}, net_value={
    (w, "EUR"): sum((r["net_value"] for r in MOVEMENTS if r["warehouse"] == w), Decimal(0))
    for w in ("WH-1", "WH-2")})


@pytest.mark.parametrize(("report", "rows", "moved"), [
    ("stock", STOCK, None),
    ("stock", LOW, None),
    ("movements", MOVEMENTS, MOVED),
    ("movements", [movement(w, *m, costed=False) for w in ("WH-1", "WH-2") for m in MOVES],
     Moved({}, {})),
    ("valuation", VALUATION, None),
    ("valuation", [r for r in VALUATION if r["currency"] is None], None),  # nothing costed
    ("stock", [], None),
    ("movements", [], Moved({}, {})),
    ("valuation", [], None),
], ids=["stock", "low", "movements", "movements-uncosted", "valuation",
        "valuation-uncosted", "stock-empty", "movements-empty", "valuation-empty"])
def test_each_report_is_drawn(tmp_path: Path, report: str, rows: list[dict[str, Any]],
                              moved: Moved | None) -> None:
    path = tmp_path / f"{report}.png"
    report_chart(path, report, rows, f"{report} by warehouse", moved)
    pixels(path)


def test_movement_types_without_units_are_left_out_and_named_in_the_note() -> None:
    rows = [*MOVEMENTS, movement("WH-1", "order.placed", 0, 0),
            movement("WH-2", "stock.thresholds-set", 0, 0)]
    assert moved_types(rows) == ["receipt.received", "shipment.dispatched",
                                 "stock.adjusted", "return.received"]
    fig = report_figure("movements", rows, "movements by warehouse", MOVED)
    shown = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert "order.placed" not in shown and "stock.thresholds-set" not in shown
    assert shown[:4] == moved_types(rows)
    assert fig.figure.get_supxlabel() == ("left out, no units moved: order.placed "
                                          "(100 movements), stock.thresholds-set "
                                          "(100 movements)")


def test_each_movement_type_has_a_colour_of_its_own() -> None:
    known = ["shipment.dispatched", "receipt.received", "transfer.dispatched",
             "transfer.received", "return.received", "stock.adjusted", "stock.counted",
             "stock.damaged"]
    styles = type_styles([*known, "new.kind", "other.kind"])
    assert len(set(styles.values())) == len(styles)  # no two look alike
    assert len({colour for colour, _ in styles.values() if colour != "#dddddd"}) == len(known)
    # a type keeps its colour whatever else is on the chart
    assert type_styles(["stock.adjusted"]) == {"stock.adjusted": styles["stock.adjusted"]}
    units = report_figure("movements", MOVEMENTS, "movements", MOVED).axes[0]
    lost = [p for p in units.patches if p.get_hatch() == "xx"]
    assert lost and {to_hex(p.get_facecolor()) for p in lost}.isdisjoint(
        {colour for colour, _ in styles.values()})


def test_the_movements_chart_labels_values_and_shows_lost_demand() -> None:
    fig = report_figure("movements", MOVEMENTS, "movements", MOVED)
    units = fig.axes[0]
    texts = {t.get_text() for t in units.texts}
    # each segment wide enough carries its units; each warehouse its totals in and out
    assert {"9,000", "7,000", "in 9,290", "out 7,300", "1,234 lost"} <= texts
    shown = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert "lost demand: turned away,\nnot shipped (not a movement)" in shown
    none_lost = report_figure("movements", MOVEMENTS, "movements", replace(MOVED, lost={}))
    assert not [t for lg in none_lost.legends for t in lg.get_texts()
                if t.get_text().startswith("lost")]


def test_the_net_value_is_drawn_in_its_currency_never_adding_two() -> None:
    money = report_figure("movements", MOVEMENTS, "movements", MOVED).axes[1]
    assert money.get_xlabel() == "net value at cost (EUR)"
    assert money.get_title() == "net value (EUR)"
    # 9,000 x 2.50 - 7,000 x 2.40 + 40 x 2.50 - 300 x 2.40 + 250 x 2.50, in each warehouse
    assert [t.get_text() for t in money.texts] == ["5,705.00 EUR"] * 2
    two = replace(MOVED, net_value={("WH-1", "EUR"): Decimal("100.5"),
                                    ("WH-1", "USD"): Decimal("-20"),
                                    ("WH-2", "EUR"): Decimal("7")})
    money = report_figure("movements", MOVEMENTS, "movements", two).axes[1]
    assert money.get_xlabel() == value_axis(["EUR", "USD"]) == (
        "net value at cost, per currency (EUR, USD: not added together)")
    assert {t.get_text() for t in money.texts} == {"100.50 EUR", "7.00 EUR", "-20.00 USD"}
    uncosted = report_figure("movements", MOVEMENTS, "movements", Moved({}, {})).axes[1]
    assert [t.get_text() for t in uncosted.texts] == ["no costed movements"]


def test_the_movements_chart_needs_what_it_draws_beyond_the_rows(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lost demand"):
        report_chart(tmp_path / "m.png", "movements", MOVEMENTS, "movements")


def test_an_empty_report_is_drawn_differently_from_a_full_one(tmp_path: Path) -> None:
    report_chart(tmp_path / "full.png", "stock", STOCK, "stock by warehouse")
    report_chart(tmp_path / "empty.png", "stock", [], "stock by warehouse")
    assert np.any(pixels(tmp_path / "full.png") != pixels(tmp_path / "empty.png"), axis=2
                  ).mean() > 0.05


def test_an_unknown_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="report"):
        report_chart(tmp_path / "x.png", "sales", STOCK, "sales")


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockflow")
    report_cli.register(parser.add_subparsers())
    return parser


def test_report_plot_takes_a_png_path_in_an_existing_directory(tmp_path: Path) -> None:
    args = report_parser().parse_args(["report", "stock", "--plot", str(tmp_path / "s.png")])
    assert args.plot == tmp_path / "s.png"


@pytest.mark.parametrize(("name", "says"), [
    ("missing/s.png", "no directory"),
    ("s.jpg", "name it"),
])
def test_report_plot_refuses_a_path_it_could_not_write_a_png_to(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, says: str) -> None:
    with pytest.raises(SystemExit):
        report_parser().parse_args(["report", "stock", "--plot", str(tmp_path / name)])
    assert says in capsys.readouterr().err
