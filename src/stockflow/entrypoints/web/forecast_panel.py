"""What a key's page says of its kept forecast (`usecases.keeping`): the suggestion in
words, the targets it was made for, how the run was made, and whether it is stale: the
key's stock changed since, or it is older than `STALE_DAYS`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from stockflow.adapters.db.forecasts import KeptForecast
from stockflow.entrypoints.web.forecast_svg import forecast_svg

__all__ = ["STALE_DAYS", "ForecastPanel", "forecast_panel", "percent"]

STALE_DAYS = 3  # a forecast older than this is said to be stale, whatever moved


def percent(share: float) -> str:
    """0.95 as "95%", 0.975 as "97.5%"."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


@dataclass(frozen=True)
class ForecastPanel:
    """The forecast section of a key's page."""

    kept: KeptForecast
    level: str  # the service-level target, e.g. "95%"
    suggestion: str  # what to do, and why, in a sentence
    position: str  # what the position counts
    expected: str  # the demand the forecast expects
    levels: str  # the intervals drawn, e.g. "80% and 95%"
    run: str  # how the run that made it covered the keys, and whether it published
    stale: list[str]  # why it may be out of date; empty when it is not
    thresholds: str  # how the key's own reorder point stands to the suggestion's
    chart: Markup


def _n(n: int) -> str:
    return f"{n:,}"


def forecast_panel(kept: KeptForecast, stock: dict[str, Any], now: datetime,
                   ) -> ForecastPanel:
    """The section for `kept`, a forecast of the key whose stock row is `stock`."""
    k = kept
    units = "unit" if k.suggested_quantity == 1 else "units"
    if k.suggested_quantity > 0:
        said = (f"Order {_n(k.suggested_quantity)} {units}: position {_n(k.position)} is "
                f"below the reorder point {_n(k.reorder_point)}; order up to "
                f"{_n(k.order_up_to)}.")
    else:
        said = (f"Nothing to order: position {_n(k.position)} is not below the reorder "
                f"point {_n(k.reorder_point)}.")
    position = (f"position {_n(k.position)} = available {_n(k.available)} + in transit "
                f"{_n(k.in_transit)} + on order {_n(k.on_order)}")
    covered = ("every key" if k.scope == "all" else
               "this key alone (its safety stock then is not calibrated on other keys)"
               if k.scope == "key" else f"the keys of {k.scope}")
    run = f"a run over {covered}, {_n(k.run_keys)} key{'s' * (k.run_keys != 1)} planned"
    if k.published:
        run += "; published as reorder.suggested"
    stale = []
    changes = int(stock["version"]) - k.stock_version
    if changes > 0:
        stale.append(f"The key's stock changed {_n(changes)} time{'s' * (changes != 1)} "
                     "since this forecast was made: the position and the suggestion may "
                     "be out of date.")
    age = (now.date() - k.as_of).days
    if age > STALE_DAYS:
        stale.append(f"This forecast was made {_n(age)} days ago.")
    own = int(stock["reorder_point"])
    thresholds = (f"The key's own reorder point, which raises its low-stock alerts, is "
                  f"{_n(own)}; stockflow forecast --apply sets it to the suggestion's."
                  if own != k.reorder_point else
                  "The key's own reorder point, which raises its low-stock alerts, is the "
                  "suggestion's.")
    expected = (f"{k.lead_time_demand:,.1f} units over the lead time; "
                f"{sum(k.mean):,.1f} over the {len(k.mean)} days forecast")
    levels = " and ".join(f"{level}%" for level in sorted(k.intervals, key=int)) or "no"
    return ForecastPanel(k, percent(k.service_level), said, position, expected, levels, run,
                         stale, thresholds, forecast_svg(k, now.date()))
