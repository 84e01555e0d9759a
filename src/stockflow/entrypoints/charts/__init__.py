"""PNG charts for people who would rather look at a picture than a table: a key's demand
history and forecast with its stock and reorder suggestion (`forecast`), the forecast
backtest (`backtest`), and the three reports (`reports`, the movements' in `movements`),
on a shared frame (`canvas`). Only commands that plot import it: matplotlib is slow to
import."""

from stockflow.entrypoints.charts.backtest import backtest_chart
from stockflow.entrypoints.charts.forecast import (
    Applied,
    ForecastView,
    Plan,
    forecast_chart,
    thresholds_drawn,
)
from stockflow.entrypoints.charts.reports import Moved, report_chart

__all__ = ["Applied", "ForecastView", "Moved", "Plan", "backtest_chart", "forecast_chart",
           "report_chart", "thresholds_drawn"]
