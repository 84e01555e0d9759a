"""PNG charts for people who would rather look at a picture than a table: a key's demand
history and forecast with its stock (`forecast`), the forecast backtest (`backtest`), and the three
reports (`reports`, the movements' in `movements`), on a shared frame (`canvas`). Only
commands that plot import it: matplotlib is slow to import."""

from stockflow.entrypoints.charts.backtest import backtest_chart
from stockflow.entrypoints.charts.forecast import ForecastView, forecast_chart
from stockflow.entrypoints.charts.reports import Moved, report_chart

__all__ = ["ForecastView", "Moved", "backtest_chart", "forecast_chart", "report_chart"]
