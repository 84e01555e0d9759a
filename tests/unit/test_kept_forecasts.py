"""Forecasts kept for the console: a run's rows say what the run found for each key (the
forecast, its intervals, the weeks of demand before it, the suggestion and the position it
came from, whether it was published), and a key's page reads them back as a buyer needs
them: the suggestion in words, the targets, whether it is stale, and a chart of the
forecast inside its intervals."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from stockflow.adapters.db.demand import Demand, Position
from stockflow.adapters.db.forecasts import KeptForecast
from stockflow.entrypoints.web.forecast_panel import forecast_panel, percent
from stockflow.entrypoints.web.forecast_svg import forecast_svg
from stockflow.planning.forecast import Backtest, KeyForecast
from stockflow.planning.reorder import Outlook, Suggestion
from stockflow.usecases.forecasting import Forecasts, Planned
from stockflow.usecases.keeping import RECENT_DAYS, kept_rows

AS_OF = date(2026, 12, 3)
MADE = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)


def planned(key: str, suggested: int, position: int) -> Planned:
    mean = [20.0 + i for i in range(14)]
    forecast = KeyForecast(
        key, "smooth", "profile_ses", mean,
        {95: ([m - 9 for m in mean], [m + 9 for m in mean]),
         80: ([m - 5 for m in mean], [m + 5 for m in mean])},
        {}, 0.0, {}, {}, 3.0, Outlook(mean, "smooth", np.zeros((0, 0)), np.zeros(0)))
    return Planned(forecast, Position(position, position - 2, 2, 0, 10, 0, version=41),
                   Suggestion(7, 7, 0.95, 161.0, 40, position + suggested,
                              position + suggested, position, suggested))


def run() -> Forecasts:
    days = 100
    shipped = np.arange(days, dtype=float)
    lost = np.where(np.arange(days) == days - 1, 5.0, 0.0)
    return Forecasts(AS_OF, AS_OF - timedelta(days=days), {},
                     {"A@WH-1": Demand(shipped, lost)},
                     {"A@WH-1": planned("A@WH-1", 40, 12), "B@WH-1": planned("B@WH-1", 0, 90)},
                     {}, Backtest({}, {}, {}, {}, {}), 0.0, 0.0, {})


def test_a_run_keeps_each_planned_key_as_it_found_it() -> None:
    rows = {r.key: r for r in kept_rows(run(), made_at=MADE, scope="all", published=True)}
    a, b = rows["A@WH-1"], rows["B@WH-1"]
    assert (a.as_of, a.made_at, a.scope, a.run_keys, a.model, a.kind) == (
        AS_OF, MADE, "all", 2, "profile_ses", "smooth")
    assert a.mean == [20.0 + i for i in range(14)]
    # the intervals by level, as JSON keeps them: [low per day, high per day]
    assert sorted(a.intervals) == ["80", "95"]
    assert a.intervals["95"][0][0] == 11.0 and a.intervals["80"][1][-1] == 38.0
    # the last four weeks of demand, shipped and turned away, oldest first
    assert len(a.recent) == RECENT_DAYS
    assert a.recent[0] == 100 - RECENT_DAYS and a.recent[-1] == 99 + 5
    assert b.recent == [0.0] * RECENT_DAYS  # no demand in the history read
    # the suggestion and the position it came from, and the stock version read
    assert (a.suggested_quantity, a.position, a.reorder_point, a.order_up_to) == (40, 12, 52, 52)
    assert (a.on_hand, a.available, a.in_transit, a.on_order) == (12, 10, 2, 0)
    assert (a.lead_time_days, a.review_days, a.service_level, a.safety_stock) == (7, 7, 0.95, 40)
    assert a.stock_version == 41
    # published: only a suggestion with something to order goes out
    assert (a.published, b.published) == (True, False)
    quiet = kept_rows(run(), made_at=MADE, scope="key", published=False)
    assert not any(r.published for r in quiet)


def kept(**changes: Any) -> KeptForecast:
    row = next(r for r in kept_rows(run(), made_at=MADE, scope="all", published=True)
               if r.key == "A@WH-1")
    return row._replace(**changes)


STOCK = {"version": 41, "reorder_point": 10}


def test_the_suggestion_in_words() -> None:
    panel = forecast_panel(kept(), STOCK, MADE)
    assert panel.suggestion == ("Order 40 units: position 12 is below the reorder point 52;"
                                " order up to 52.")
    assert panel.position == "position 12 = available 10 + in transit 2 + on order 0"
    assert panel.level == "95%" and percent(0.975) == "97.5%"
    assert panel.levels == "80% and 95%"
    assert panel.expected == "161.0 units over the lead time; 371.0 over the 14 days forecast"
    assert panel.run == "a run over every key, 2 keys planned; published as reorder.suggested"
    assert panel.stale == []
    assert "is 10; stockflow forecast --apply sets it" in panel.thresholds
    nothing = forecast_panel(kept(suggested_quantity=0, position=90), STOCK, MADE)
    assert nothing.suggestion == "Nothing to order: position 90 is not below the reorder point 52."
    one = forecast_panel(kept(suggested_quantity=1, scope="key", run_keys=1,
                              published=False), {**STOCK, "reorder_point": 52}, MADE)
    assert one.suggestion.startswith("Order 1 unit: ")
    assert one.run == ("a run over this key alone (its safety stock then is not calibrated "
                       "on other keys), 1 key planned")
    assert one.thresholds.endswith("is the suggestion's.")
    assert forecast_panel(kept(scope="warehouse WH-1"), STOCK, MADE).run.startswith(
        "a run over the keys of warehouse WH-1")


def test_a_forecast_is_stale_once_the_stock_moved_or_after_a_few_days() -> None:
    moved = forecast_panel(kept(), {**STOCK, "version": 44}, MADE)
    assert moved.stale == ["The key's stock changed 3 times since this forecast was made: "
                           "the position and the suggestion may be out of date."]
    assert forecast_panel(kept(), STOCK, MADE + timedelta(days=3)).stale == []
    old = forecast_panel(kept(), {**STOCK, "version": 42}, MADE + timedelta(days=5))
    assert old.stale[0].startswith("The key's stock changed 1 time since")
    assert old.stale[1] == "This forecast was made 5 days ago."


def shapes(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own markup, parsed to be checked


def test_the_chart_draws_the_weeks_before_then_the_forecast_inside_its_intervals() -> None:
    k = kept()
    root = shapes(str(forecast_svg(k, AS_OF)))
    assert root.tag == "svg" and root.get("role") == "img"
    bars = root.findall("rect[@class='demand']")
    assert len(bars) == sum(1 for v in k.recent if v > 0) == RECENT_DAYS
    bands = root.findall("path[@class='interval']")
    # the widest underneath, paler
    assert [b.findtext("title") for b in bands] == ["95% interval", "80% interval"]
    assert float(bands[0].get("fill-opacity", 0)) < float(bands[1].get("fill-opacity", 0))
    (line,) = root.findall("path[@class='forecast']")
    assert line.get("d", "").count("H") == len(k.mean)  # a step a day
    texts = [t.text for t in root.iter("text")]
    assert "forecast from" in texts and "today" not in texts
    assert {"Thu 2026-11-05", "Thu 2026-12-03", "Wed 2026-12-16"} <= set(texts)
    # the forecast of some days ago: today is marked inside it
    later = [t.text for t in shapes(str(forecast_svg(k, AS_OF + timedelta(days=4)))).iter(
        "text")]
    assert "today" in later
    # the highest of demand and bounds sets the scale, to the round number above it with
    # some room: 500 units a day on an axis to 600 (its middle line 300)
    tall = k._replace(recent=[*k.recent[:-1], 500.0])
    labels = [t.text for t in shapes(str(forecast_svg(tall, AS_OF))).iter("text")]
    assert labels[:3] == ["0", "300", "600"]
    labels = [t.text for t in shapes(str(forecast_svg(k, AS_OF))).iter("text")]
    assert labels[:3] == ["0", "75", "150"]  # the highest day, 104 units: up to 150


def test_a_forecast_without_intervals_or_demand_still_draws() -> None:
    bare = kept(intervals={}, recent=[0.0] * 5)
    root = shapes(str(forecast_svg(bare, AS_OF)))
    assert not root.findall("path[@class='interval']")
    assert not root.findall("rect[@class='demand']")
    assert root.findall("path[@class='forecast']")
    assert forecast_panel(bare, STOCK, MADE).levels == "no"
