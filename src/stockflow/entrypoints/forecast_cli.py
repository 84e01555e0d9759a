"""`stockflow forecast`: each key's demand forecast from the ledger (the model chosen by a
rolling-origin backtest, see `planning.forecast`), its reorder suggestion (see
`planning.reorder`), and on request the backtest's figures, a chart, `reorder.suggested`
events (`--publish`) and reorder points that follow demand (`--apply`).
`stockflow lead-time`: the lead times the suggestions use, per warehouse or per key."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from stockflow import StockflowError
from stockflow.contract.emit import Message, output_message
from stockflow.contract.events import envelope
from stockflow.contract.outputs import ReorderSuggested
from stockflow.contract.topics import Topics
from stockflow.domain.effects import Output
from stockflow.entrypoints.app import migrated_database, stop_on_signals
from stockflow.entrypoints.report_cli import png_path
from stockflow.entrypoints.tables import add_column, show
from stockflow.planning import reorder
from stockflow.settings import Settings

if TYPE_CHECKING:
    from stockflow.adapters.db import demand
    from stockflow.planning.forecast import Backtest, KeyForecast

# numpy, and the demand and forecast modules on it, are imported where they are used:
# every `stockflow` command registers this one, and numpy would add 0.12 s to the start
# of each, the processor's included

__all__ = ["forecast_keys", "register"]

_CHUNK = 100  # keys per task handed to a worker process: progress moves, overhead stays low
_SHOWN = 40  # suggestions listed in the table; --json has them all


class Planned(NamedTuple):
    forecast: KeyForecast
    position: demand.Position
    suggestion: reorder.Suggestion


def forecast_keys(histories: list[tuple[str, Any]], horizon: int, workers: int,
                  ) -> dict[str, KeyForecast | str]:
    """Each key's forecast, or why it has none: forecast_many over chunks of the keys on
    `workers` processes, with a progress bar. SIGINT/SIGTERM stop it (StockflowError)."""
    from stockflow.planning.forecast import forecast_many  # noqa: PLC0415 - see the top

    chunks = [histories[i:i + _CHUNK] for i in range(0, len(histories), _CHUNK)]
    got: dict[str, KeyForecast | str] = {}

    def take(chunk: list[tuple[str, Any]], results: list[KeyForecast | str]) -> None:
        got.update(zip((key for key, _ in chunk), results, strict=True))
        bar.advance(task, len(chunk))

    with (stop_on_signals() as stop,
          Progress(*_columns(), transient=True, console=Console(stderr=True)) as bar):
        task = bar.add_task(f"forecasting on {workers} process(es)", total=len(histories))
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


def _columns() -> tuple[Any, ...]:
    return (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn())


def _suggestion_message(topics: Topics, key: str, as_of: date, p: Planned, now: str,
                        ) -> Message:
    sku, _, warehouse = key.partition("@")
    s = p.suggestion
    data = ReorderSuggested(
        sku=sku, warehouse=warehouse, as_of=as_of, model=p.forecast.model,
        lead_time_days=s.lead_time_days, review_days=s.review_days,
        service_level=s.service_level, lead_time_demand=s.lead_time_demand,
        safety_stock=s.safety_stock, reorder_point=s.reorder_point,
        order_up_to=s.order_up_to, on_hand=p.position.on_hand,
        available=p.position.available, in_transit=p.position.in_transit,
        position=s.position, suggested_quantity=s.suggested_quantity,
    ).model_dump(mode="json")
    # the same suggestion made again the same day carries the same id: de-duplicable
    line = f"{s.reorder_point}/{s.order_up_to}/{s.suggested_quantity}"
    return output_message(topics, f"forecast/{key}/{as_of.isoformat()}",
                          Output("reorder.suggested", key, line, data), now)


def _publish(settings: Settings, planned: dict[str, Planned], as_of: date, *,
             suggestions: bool, thresholds: bool) -> tuple[int, int]:
    """Suggestions (where there is something to order) and reorder points (where they
    change), all in one Kafka transaction; (suggestions, thresholds) sent. The keys'
    safety stock is left as it is: in the contract it holds units back from sale, which
    is not what a forecast's safety stock means."""
    from stockflow.publisher import Publisher  # noqa: PLC0415 - only when publishing

    topics, now = Topics(settings.topic_prefix), datetime.now(UTC).isoformat()
    messages, counts = [], [0, 0]
    with Publisher(settings, source="stockflow-forecast") as pub:
        for key, p in planned.items():
            if suggestions and p.suggestion.suggested_quantity > 0:
                messages.append(_suggestion_message(topics, key, as_of, p, now))
                counts[0] += 1
            wanted = p.suggestion.reorder_point
            if thresholds and wanted != p.position.reorder_point:
                sku, _, warehouse = key.partition("@")
                messages.append(pub.prepare(envelope(
                    "stock.thresholds-set",
                    {"sku": sku, "warehouse": warehouse, "reorder_point": wanted,
                     "safety_stock": p.position.safety_stock},
                    id_=f"forecast/{key}/{as_of.isoformat()}/reorder-point/{wanted}",
                    source=pub.source)))
                counts[1] += 1
        if messages:
            pub.transact(messages)
    return counts[0], counts[1]


def _backtest_table(summary: Backtest) -> Table:
    from stockflow.planning.forecast import MODELS  # noqa: PLC0415 - see the top

    table = Table(title=f"backtest, held-out window: {summary.keys['smooth']:,} smooth and "
                        f"{summary.keys['intermittent']:,} intermittent keys")
    add_column(table, "model", number=False)
    for head in ("MASE smooth", "MASE intermittent", "MASE all", "WAPE smooth",
                 "WAPE intermittent", "WAPE all", "chosen by"):
        add_column(table, head, number=True)
    for name in (*MODELS, "chosen"):
        cells = [f"{fig[name][c]:.3f}" if c in fig.get(name, {}) else "-"
                 for fig in (summary.mase, summary.wape)
                 for c in ("smooth", "intermittent", "all")]
        table.add_row(name, *cells, f"{summary.chosen.get(name, sum(summary.chosen.values())):,}")
    return table


def _plot_key(conn: Any, path: Path, key: str, first: date, days: int, p: Planned,
              history: demand.Demand) -> None:
    from stockflow.adapters.db import demand  # noqa: PLC0415 - see the top
    from stockflow.entrypoints.charts import ForecastView, forecast_chart  # noqa: PLC0415

    f = p.forecast
    forecast_chart(path, ForecastView(
        key=key, model=f.model, days=[first + timedelta(days=d) for d in range(days)],
        demand=history.shipped.tolist(), lost=history.lost.tolist(),
        on_hand=demand.on_hand_by_day(conn, key, first, days).tolist(), mean=f.mean,
        intervals={lv: (list(lo), list(hi)) for lv, (lo, hi) in f.intervals.items()},
        reorder_point=float(p.suggestion.reorder_point),
        safety_stock=float(p.suggestion.safety_stock)))


def cmd_forecast(args: argparse.Namespace, settings: Settings) -> int:
    import numpy as np  # noqa: PLC0415 - see the top

    from stockflow.adapters.db import demand  # noqa: PLC0415
    from stockflow.planning.forecast import summarise  # noqa: PLC0415

    if args.warehouse and args.key:
        raise StockflowError("--warehouse goes with --all")
    as_of = datetime.now(UTC).date()  # today is not over: the history ends yesterday
    first = as_of - timedelta(days=args.days)
    started = time.monotonic()
    with migrated_database(settings) as conn:
        held = demand.positions(conn, key=args.key, warehouse=args.warehouse)
        if args.key and args.key not in held:
            raise StockflowError(f"no stock recorded for {args.key}")
        history = demand.daily_demand(conn, first, args.days, key=args.key,
                                      warehouse=args.warehouse)
        lead_times = demand.lead_times(conn)
        read = time.monotonic() - started
        zero = demand.Demand(np.zeros(args.days), np.zeros(args.days))
        series = [(k, (h := history.get(k, zero)).shipped + h.lost) for k in held]
        results = forecast_keys(series, args.horizon, args.workers)
        modelled = time.monotonic() - started - read
        planned: dict[str, Planned] = {}
        skipped: dict[str, str] = {}
        for key, _ in series:
            got = results[key]
            if isinstance(got, str):
                skipped[key] = got
                continue
            pos = held[key]
            planned[key] = Planned(got, pos, reorder.suggest(
                got.mean, got.spread, available=pos.available, in_transit=pos.in_transit,
                lead_time_days=reorder.lead_time(key, lead_times),
                review_days=args.review_days, service_level=args.service_level))
        summary = summarise([p.forecast for p in planned.values()])
        if args.plot:
            if args.key and args.key in planned:
                _plot_key(conn, args.plot, args.key, first, args.days,
                          planned[args.key], history.get(args.key, zero))
            elif args.key:
                raise StockflowError(f"--plot: {skipped[args.key]}")
            else:
                from stockflow.entrypoints.charts import backtest_chart  # noqa: PLC0415
                backtest_chart(args.plot, summary)
            print(f"chart written to {args.plot}", file=sys.stderr)
    sent = (0, 0)
    if args.publish or args.apply:
        sent = _publish(settings, planned, as_of, suggestions=args.publish,
                        thresholds=args.apply)
    timing = {"keys": len(held), "read_s": round(read, 2), "forecast_s": round(modelled, 2),
              "workers": args.workers}
    if args.json:
        doc: dict[str, Any] = {
            "as_of": as_of.isoformat(), "horizon": args.horizon,
            "keys": [{"key": k, **asdict(p.forecast), **asdict(p.suggestion),
                      "on_hand": p.position.on_hand, "available": p.position.available,
                      "in_transit": p.position.in_transit} for k, p in planned.items()],
            "skipped": skipped, "published": {"reorder.suggested": sent[0],
                                              "stock.thresholds-set": sent[1]},
            "timing": timing}
        if args.backtest:
            doc["backtest"] = {**asdict(summary),
                               "chosen_vs_baseline": summary.versus_baseline()}
        json.dump(doc, sys.stdout, default=str)
        print()
    else:
        _print(planned, skipped, summary, args, sent, timing)
    return 0


def _print(planned: dict[str, Planned], skipped: dict[str, str], summary: Backtest,
           args: argparse.Namespace, sent: tuple[int, int], timing: dict[str, Any]) -> None:
    out = Console(soft_wrap=True)  # lines grep whole; tables go through `show`
    if args.backtest and planned:
        show(_backtest_table(summary))
        cover = ", ".join(f"{lv}% intervals hold {summary.coverage[lv]:.1%} of actuals"
                          for lv in sorted(summary.coverage))
        gain = summary.versus_baseline()["all"]
        out.print(f"chosen models' MASE {gain:+.1%} against the baseline; {cover}")
    rows = sorted(planned.items(), key=lambda kv: -kv[1].suggestion.suggested_quantity)
    if not args.key:
        rows = [kv for kv in rows if kv[1].suggestion.suggested_quantity > 0]
    table = Table(title=f"forecast over {args.horizon} days and reorder suggestions "
                        f"(service level {args.service_level:.0%})")
    for head in ("key", "class", "model", f"demand {args.horizon} d", "lead time",
                 "safety stock", "reorder point", "was", "position", "order up to", "suggest"):
        add_column(table, head, number=head not in ("key", "class", "model"))
    for key, p in rows[:_SHOWN]:
        s = p.suggestion
        table.add_row(key, p.forecast.kind, p.forecast.model, f"{sum(p.forecast.mean):,.1f}",
                      f"{s.lead_time_days} d", f"{s.safety_stock:,}", f"{s.reorder_point:,}",
                      f"{p.position.reorder_point:,}", f"{s.position:,}",
                      f"{s.order_up_to:,}", f"{s.suggested_quantity:,}")
    show(table)
    if len(rows) > _SHOWN:
        out.print(f"... and {len(rows) - _SHOWN:,} more to order; --json lists every key")
    for why in list(skipped.values())[:5]:
        out.print(f"not forecast: {why}")  # each reason starts with its key
    if len(skipped) > 5:
        out.print(f"... and {len(skipped) - 5:,} more keys with too little history")
    if args.publish or args.apply:
        out.print(f"published {sent[0]:,} reorder.suggested, {sent[1]:,} stock.thresholds-set")
    print(f"{timing['keys']:,} keys: read in {timing['read_s']:.1f} s, forecast in "
          f"{timing['forecast_s']:.1f} s on {timing['workers']} processes", file=sys.stderr)


def cmd_lead_time(args: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.db import demand  # noqa: PLC0415 - see the top

    with migrated_database(settings) as conn:
        if args.action == "set":
            if not 1 <= args.days <= 365:
                raise StockflowError("a lead time is 1 to 365 days")
            demand.set_lead_time(conn, args.scope, args.days)
        elif args.action == "clear" and not demand.clear_lead_time(conn, args.scope):
            raise StockflowError(f"{args.scope} has no lead time of its own")
        conn.commit()
        table = demand.lead_times(conn)
    for scope in sorted(table):
        print(f"{scope:<40} {table[scope]:>4} d")
    print(f"{'(default)':<40} {reorder.LEAD_TIME_DAYS:>4} d")
    return 0


def _service_level(text: str) -> float:
    level = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0.5 <= level < 1:
        raise argparse.ArgumentTypeError(f"a service level from 50% to under 100%: {text}")
    return level


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {text}")
    return n


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `forecast` and `lead-time` to the CLI's subcommands."""
    p = sub.add_parser("forecast", help="demand forecasts and reorder suggestions from the "
                                        "ledger")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--key", metavar="SKU@WH")
    which.add_argument("--all", action="store_true", help="every key (of --warehouse)")
    p.add_argument("--warehouse", help="with --all")
    p.add_argument("--horizon", type=_positive, default=14, help="days to forecast")
    p.add_argument("--days", type=_positive, default=365,
                   help="days of history, ending yesterday (default 365)")
    p.add_argument("--backtest", action="store_true",
                   help="print MASE and WAPE per model and class, and interval coverage")
    p.add_argument("--json", action="store_true", help="everything, as one JSON document")
    p.add_argument("--plot", type=png_path, metavar="FILE.png",
                   help="a chart: the key's history, forecast and reorder point; with --all,"
                        " the backtest")
    p.add_argument("--service-level", type=_service_level, default=reorder.SERVICE_LEVEL,
                   help=f"chance of no stock-out over a lead time (default "
                        f"{reorder.SERVICE_LEVEL * 100:.0f}%%)")  # %% for argparse
    p.add_argument("--review-days", type=_positive, default=reorder.REVIEW_DAYS,
                   help=f"days between orders (default {reorder.REVIEW_DAYS})")
    p.add_argument("--publish", action="store_true",
                   help="emit reorder.suggested for the keys with something to order")
    p.add_argument("--apply", action="store_true",
                   help="publish stock.thresholds-set: reorder points follow the forecast")
    p.add_argument("--workers", type=_positive, default=os.cpu_count() or 1,
                   help="processes (default: one per core)")
    p.set_defaults(func=cmd_forecast)

    lt = sub.add_parser("lead-time", help="the lead times reorder suggestions use")
    lt.add_argument("action", choices=("list", "set", "clear"))
    lt.add_argument("scope", nargs="?", help="a warehouse, or a key SKU@WH (wins over its "
                                             "warehouse's)")
    lt.add_argument("days", nargs="?", type=int)
    lt.set_defaults(func=_checked_lead_time)


def _checked_lead_time(args: argparse.Namespace, settings: Settings) -> int:
    if args.action != "list" and not args.scope:
        raise StockflowError(f"lead-time {args.action} needs a scope")
    if args.action == "set" and args.days is None:
        raise StockflowError("lead-time set needs the days")
    return cmd_lead_time(args, settings)
