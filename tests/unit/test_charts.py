"""The charts, drawn from synthetic data and opened as images: each is a PNG of a readable
size with real content, the forecast chart shows what its key's data says (lost demand
only when there was some, another key another picture), the backtest chart shows the
service level held out beside the accuracy (and that level is judged as a buyer would),
the movements chart labels its values, leaves out the types that moved nothing, tells each
type by its colour, shows the demand turned away and the currency of its values, and
`report --plot` refuses a path it could not write to before any query runs."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

from stockflow.adapters.db.demand import Position
from stockflow.entrypoints import report_cli
from stockflow.entrypoints.charts import (
    ForecastView,
    Moved,
    backtest_chart,
    forecast_chart,
    report_chart,
)
from stockflow.entrypoints.charts.backtest import backtest_figure
from stockflow.entrypoints.charts.movements import moved_types, type_styles, value_axis
from stockflow.entrypoints.charts.reports import report_figure
from stockflow.planning.forecast import Backtest, KeyForecast, Kind
from stockflow.planning.reorder import Outlook, Suggestion
from stockflow.usecases.forecasting import Forecasts, Planned, held_out_service
from tests.images import assert_meaningful_png as pixels

LOST_RED = (0xC4, 0x4E, 0x52)  # the lost-demand bars' colour, drawn flat inside the bars


def has_colour(rgb: npt.NDArray[np.uint8], colour: tuple[int, int, int]) -> bool:
    return bool(np.all(rgb == np.array(colour, dtype=np.uint8), axis=2).sum() > 50)


def view(key: str = "SKU-1@WH-1", days: int = 200, *, lost: bool = True, weekly: float = 12,
         reorder_point: float | None = 420.0, safety_stock: float | None = 160.0,
         horizon: int = 28) -> ForecastView:
    start = date(2026, 1, 5)
    demand = [max(0.0, 30 + weekly * math.sin(i * 2 * math.pi / 7)) for i in range(days)]
    turned_away = [6.0 if lost and i % 17 == 0 else 0.0 for i in range(days)]
    on_hand, held = [], 900.0
    for d in demand:
        held = held - d if held - d > 300 else held - d + 1200  # a receipt at the reorder point
        on_hand.append(held)
    mean = [30 + weekly * math.sin((days + i) * 2 * math.pi / 7) for i in range(horizon)]
    return ForecastView(
        key=key, model="auto_ets", days=[start + timedelta(days=i) for i in range(days)],
        demand=demand, lost=turned_away, on_hand=on_hand, mean=mean,
        intervals={80: ([max(0.0, m - 8) for m in mean], [m + 8 for m in mean]),
                   95: ([max(0.0, m - 14) for m in mean], [m + 14 for m in mean])},
        reorder_point=reorder_point, safety_stock=safety_stock)


def test_the_forecast_chart_marks_lost_demand_only_when_some_was_turned_away(
        tmp_path: Path) -> None:
    forecast_chart(tmp_path / "lost.png", view(lost=True))
    forecast_chart(tmp_path / "none.png", view(lost=False))
    assert has_colour(pixels(tmp_path / "lost.png"), LOST_RED)
    assert not has_colour(pixels(tmp_path / "none.png"), LOST_RED)


def test_the_forecast_chart_draws_without_a_reorder_point(tmp_path: Path) -> None:
    with_rop, without = tmp_path / "rop.png", tmp_path / "no-rop.png"
    forecast_chart(with_rop, view(lost=False))
    forecast_chart(without, view(lost=False, reorder_point=None, safety_stock=None))
    assert not np.array_equal(pixels(with_rop), pixels(without))


def test_another_keys_data_draws_another_picture(tmp_path: Path) -> None:
    forecast_chart(tmp_path / "a.png", view("SKU-1@WH-1"))
    forecast_chart(tmp_path / "b.png", view("SKU-2@WH-1", days=60, weekly=3, horizon=14))
    a, b = pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png")
    assert a.shape == b.shape
    assert np.any(a != b, axis=2).mean() > 0.05  # a different picture, not a retitled one


def test_a_short_history_and_a_key_without_any_are_still_drawn(tmp_path: Path) -> None:
    forecast_chart(tmp_path / "short.png", view(days=20, horizon=7))
    pixels(tmp_path / "short.png")
    empty = ForecastView("NEW@WH-1", "weekday_avg", [], [], [], [], [], {}, None, None)
    forecast_chart(tmp_path / "empty.png", empty)
    pixels(tmp_path / "empty.png")


def legend(ax: Axes) -> list[str]:
    shown = ax.get_legend()
    return [t.get_text() for t in shown.get_texts()] if shown else []


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
    forecast = KeyForecast("K", kind, "m", [20.0] * 14, {}, {}, 0.0, {}, 1.0, outlook)
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
