"""The charts, drawn from synthetic data and opened as images: each is a PNG of a readable
size with real content, the forecast chart shows what its key's data says (lost demand
only when there was some, another key another picture), and `report --plot` refuses a
path it could not write to before any query runs."""

from __future__ import annotations

import argparse
import math
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from stockflow.entrypoints import report_cli
from stockflow.entrypoints.charts import (
    ForecastView,
    backtest_chart,
    forecast_chart,
    report_chart,
)
from stockflow.planning.forecast import Backtest
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
    backtest_chart(tmp_path / "backtest.png", summary)
    pixels(tmp_path / "backtest.png")
    backtest_chart(tmp_path / "none.png", Backtest({}, {}, {}, {}, {}))
    pixels(tmp_path / "none.png")


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


@pytest.mark.parametrize(("report", "rows"), [
    ("stock", STOCK),
    ("stock", LOW),
    ("movements", MOVEMENTS),
    ("movements", [movement(w, *m, costed=False) for w in ("WH-1", "WH-2") for m in MOVES]),
    ("valuation", VALUATION),
    ("valuation", [r for r in VALUATION if r["currency"] is None]),  # nothing costed
    ("stock", []),
    ("movements", []),
    ("valuation", []),
], ids=["stock", "low", "movements", "movements-uncosted", "valuation",
        "valuation-uncosted", "stock-empty", "movements-empty", "valuation-empty"])
def test_each_report_is_drawn(tmp_path: Path, report: str, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / f"{report}.png"
    report_chart(path, report, rows, f"{report} by warehouse")
    pixels(path)


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
