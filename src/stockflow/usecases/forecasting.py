"""Forecast keys' demand from the ledger and suggest their reorders: each key's model chosen
by a rolling-origin backtest (`planning.forecast`), its suggestion from its position (on
order included), lead time and review period under the rule that keeps its service level
(`planning.reorder.top_up`, its safety multiplier calibrated on this run's backtests),
many keys at once on worker processes."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from stockflow import StockflowError
from stockflow.adapters.db.store import Conn
from stockflow.adapters.signals import stop_on_signals
from stockflow.planning import reorder

if TYPE_CHECKING:
    from stockflow.adapters.db import demand
    from stockflow.planning.forecast import Backtest, KeyForecast

# numpy, and the demand and forecast modules on it, are imported where they are used:
# every `stockflow` command registers the forecast command, which imports this module, and
# numpy would add 0.12 s to the start of each, the processor's included

__all__ = ["Forecasts", "Kept", "Planned", "forecast_keys", "forecast_stock", "held_out_service"]

_CHUNK = 100  # keys per task handed to a worker process: progress moves, overhead stays low


class Planned(NamedTuple):
    """A key's forecast, its position, and the reorder suggestion made from both."""

    forecast: KeyForecast
    position: demand.Position
    suggestion: reorder.Suggestion


@dataclass(frozen=True)
class Forecasts:
    """What `forecast_stock` found: the keys planned and the ones that could not be."""

    as_of: date  # today: the history ends the day before
    first: date  # the history's first day
    held: dict[str, demand.Position]  # every key asked about
    history: dict[str, demand.Demand]  # keys with ledger rows in the history
    planned: dict[str, Planned]
    skipped: dict[str, str]  # key -> why it has no forecast (the reason starts with it)
    summary: Backtest
    read_s: float  # seconds reading the ledger
    forecast_s: float  # seconds forecasting
    # (lead time, target) -> the smooth keys' safety multiplier (`reorder.top_up`)
    multipliers: dict[tuple[int, float], float]


class Kept(NamedTuple):
    """How many of some keys' held-out cycles the reorder level would have kept free of a
    stock-out, of how many."""

    kept: int
    cycles: int


def forecast_keys(histories: list[tuple[str, Any]], horizon: int, workers: int, *,
                  progress: Callable[[int], None] | None = None,
                  ) -> dict[str, KeyForecast | str]:
    """Each key's forecast, or why it has none: forecast_many over chunks of the keys on
    `workers` processes; `progress` hears how many more keys are done. SIGINT/SIGTERM
    stop it (StockflowError)."""
    from stockflow.planning.forecast import forecast_many  # noqa: PLC0415 - see the top

    chunks = [histories[i:i + _CHUNK] for i in range(0, len(histories), _CHUNK)]
    got: dict[str, KeyForecast | str] = {}

    def take(chunk: list[tuple[str, Any]], results: list[KeyForecast | str]) -> None:
        got.update(zip((key for key, _ in chunk), results, strict=True))
        if progress is not None:
            progress(len(chunk))

    with stop_on_signals() as stop:
        if workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                if stop.is_set():
                    break
                take(chunk, forecast_many(chunk, horizon))
        else:
            # fork: the workers inherit numpy and statsforecast already imported instead
            # of importing them again (seconds); they touch neither Postgres nor Kafka
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_leave_interrupts_to_the_parent)
            pending: dict[Future[list[KeyForecast | str]], list[tuple[str, Any]]] = {
                pool.submit(forecast_many, c, horizon): c for c in chunks}
            try:
                while pending and not stop.is_set():
                    done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in done:
                        take(pending.pop(f), f.result())
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    if stop.is_set():
        raise StockflowError(f"stopped after {len(got):,} of {len(histories):,} keys")
    return got


def _leave_interrupts_to_the_parent() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool cleanly
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def forecast_stock(conn: Conn, *, key: str | None, warehouse: str | None, days: int,
                   horizon: int, workers: int, review_days: int, service_level: float,
                   progress: Callable[[int], None] | None = None,
                   started: Callable[[int], None] | None = None) -> Forecasts:
    """Forecast `key`, or every key (of `warehouse`), from its last `days` days of demand
    (shipped plus turned away), and suggest its reorder for its service-level target
    (`service_level` where neither the key nor its warehouse has one). `started` hears
    how many keys are to be forecast once the ledger is read; `progress`, see
    `forecast_keys`."""
    import numpy as np  # noqa: PLC0415 - see the top

    from stockflow.adapters.db import demand  # noqa: PLC0415
    from stockflow.planning.forecast import summarise  # noqa: PLC0415

    as_of = datetime.now(UTC).date()  # today is not over: the history ends yesterday
    first = as_of - timedelta(days=days)
    began = time.monotonic()
    held = demand.positions(conn, key=key, warehouse=warehouse)
    if key and key not in held:
        raise StockflowError(f"no stock recorded for {key}")
    history = demand.daily_demand(conn, first, days, key=key, warehouse=warehouse)
    lead_times, targets = demand.lead_times(conn), demand.service_levels(conn)
    read = time.monotonic() - began
    zero = demand.Demand(np.zeros(days), np.zeros(days))
    series = [(k, (h := history.get(k, zero)).shipped + h.lost) for k in held]
    if started is not None:
        started(len(series))
    results = forecast_keys(series, horizon, workers, progress=progress)
    modelled = time.monotonic() - began - read
    skipped = {k: got for k, _ in series if isinstance(got := results[k], str)}
    forecasts = {k: got for k, _ in series if not isinstance(got := results[k], str)}
    # each key's lead time and target: its own, else its warehouse's, else the default
    rules = {k: (reorder.lead_time(k, lead_times), reorder.scoped(k, targets, service_level))
             for k in forecasts}
    smooth = [f.outlook for f in forecasts.values() if f.kind == "smooth"]
    multipliers: dict[tuple[int, float], float] = {}
    for lead in {lead for lead, _ in rules.values()}:  # the held-out sums once per cover
        wanted = {target for lead_, target in rules.values() if lead_ == lead}
        for target, multiplier in reorder.calibrated_multipliers(
                smooth, lead + review_days, wanted, review_days=review_days).items():
            multipliers[lead, target] = multiplier
    planned: dict[str, Planned] = {}
    for k, got in forecasts.items():
        pos, (lead, target) = held[k], rules[k]
        planned[k] = Planned(got, pos, reorder.top_up(
            got.outlook, multiplier=multipliers[lead, target], available=pos.available,
            in_transit=pos.in_transit, on_order=pos.on_order, lead_time_days=lead,
            review_days=review_days, service_level=target))
    summary = summarise([p.forecast for p in planned.values()])
    return Forecasts(as_of, first, held, history, planned, skipped, summary, read, modelled,
                     multipliers)


def held_out_service(found: Forecasts) -> dict[tuple[str, float], Kept]:
    """The service level the reorder rule would have delivered on the backtest's held-out
    window, per class and service-level target: for each key whose window is at least as
    long as its lead time plus review, the level `reorder.top_up` sets at the window's start
    from what was known then (the chosen model's forecast from there, its errors on the
    windows before, the demand before), and whether the window's demand over the lead time
    plus review stayed within it: a replenishment cycle without a stock-out. The smooth
    keys' multiplier is the run's, calibrated on all the windows, this one among them."""
    import numpy as np  # noqa: PLC0415 - see the top

    tally: dict[tuple[str, float], list[int]] = {}
    for p in found.planned.values():
        s, o = p.suggestion, p.forecast.outlook
        cover = s.lead_time_days + s.review_days
        if o.errors.ndim != 2 or o.errors.shape[0] < 2 or o.errors.shape[1] < cover:
            continue  # no window before this one, or this one is shorter than the cover
        days = o.errors.shape[1]
        actual = o.recent[-days:]
        before = reorder.Outlook(np.maximum(actual - o.errors[-1], 0.0).tolist(), o.kind,
                                 o.errors[:-1], o.recent[:-days])
        level = reorder.top_up(
            before, multiplier=found.multipliers[s.lead_time_days, s.service_level],
            available=0, in_transit=0, lead_time_days=s.lead_time_days,
            review_days=s.review_days, service_level=s.service_level).order_up_to
        counts = tally.setdefault((o.kind, s.service_level), [0, 0])
        counts[0] += int(float(actual[:cover].sum()) <= level)
        counts[1] += 1
    return {group: Kept(*counts) for group, counts in sorted(tally.items())}
