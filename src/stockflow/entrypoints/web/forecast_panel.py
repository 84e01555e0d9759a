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
from stockflow.entrypoints.web.render import units

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


def forecast_panel(kept: KeptForecast, stock: dict[str, Any], now: datetime,
                   ) -> ForecastPanel:
    """The section for `kept`, a forecast of the key whose stock row is `stock`."""
    k = kept
    noun = "unit" if k.suggested_quantity == 1 else "units"
    if k.suggested_quantity > 0:
        said = (f"Order {units(k.suggested_quantity)} {noun}: position {units(k.position)} is "
                f"below the reorder point {units(k.reorder_point)}; order up to "
                f"{units(k.order_up_to)}.")
    else:
        said = (f"Nothing to order: position {units(k.position)} is not below the reorder "
                f"point {units(k.reorder_point)}.")
    position = (f"position {units(k.position)} = available {units(k.available)} + in transit "
                f"{units(k.in_transit)} + on order {units(k.on_order)}")
    covered = ("every key" if k.scope == "all" else
               "this key alone (its safety stock then is not calibrated on other keys)"
               if k.scope == "key" else f"the keys of {k.scope}")
    run = f"a run over {covered}, {units(k.run_keys)} key{'s' * (k.run_keys != 1)} planned"
    if k.published:
        run += "; published as reorder.suggested"
    stale = []
    changes = int(stock["version"]) - k.stock_version
    if changes > 0:
        stale.append(f"The key's stock changed {units(changes)} time{'s' * (changes != 1)} "
                     "since this forecast was made: the position and the suggestion may "
                     "be out of date.")
    age = (now.date() - k.as_of).days
    if age > STALE_DAYS:
        stale.append(f"This forecast was made {units(age)} days ago.")
    own = int(stock["reorder_point"])
    thresholds = (f"The key's own reorder point, which raises its low-stock alerts, is "
                  f"{units(own)}; stockflow forecast --apply sets it to the suggestion's, as "
                  "does the thresholds form above (with the write scope)."
                  if own != k.reorder_point else
                  "The key's own reorder point, which raises its low-stock alerts, is the "
                  "suggestion's.")
    expected = (f"{k.lead_time_demand:,.1f} units over the lead time; "
                f"{sum(k.mean):,.1f} over the {len(k.mean)} days forecast")
    levels = " and ".join(f"{level}%" for level in sorted(k.intervals, key=int)) or "no"
    return ForecastPanel(k, percent(k.service_level), said, position, expected, levels, run,
                         stale, thresholds, forecast_svg(k, now.date()))
