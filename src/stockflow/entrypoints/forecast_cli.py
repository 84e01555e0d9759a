"""`stockflow forecast`: each key's demand forecast from the ledger (the model chosen by a
rolling-origin backtest, see `planning.forecast`), its reorder suggestion (see
`planning.reorder`), kept per key for the console unless `--no-keep`, and on request the
backtest's figures, a chart, `reorder.suggested` events (`--publish`) and reorder points
that follow demand (`--apply`).
`stockflow lead-time`: the lead times the suggestions use, per warehouse or per key."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table

from stockflow import StockflowError
from stockflow.adapters.settings import Settings
from stockflow.entrypoints.app import migrated_database
from stockflow.entrypoints.arguments import png_path
from stockflow.entrypoints.tables import add_column, show
from stockflow.planning import reorder
from stockflow.usecases.forecasting import Forecasts, Kept, forecast_stock, held_out_service
from stockflow.usecases.keeping import keep_forecasts

if TYPE_CHECKING:
    from stockflow.planning.forecast import Backtest, KeyForecast

# numpy, and the demand and forecast modules on it, are imported where they are used:
# every `stockflow` command registers this one, and numpy would add 0.12 s to the start
# of each, the processor's included

__all__ = ["register"]

_SHOWN = 40  # suggestions listed in the table; --json has them all


def _columns() -> tuple[Any, ...]:
    return (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn())


class _Bar:
    """The forecast's progress bar on stderr, shown once the keys to forecast are known."""

    def __init__(self, bar: Progress, workers: int) -> None:
        self.bar, self.workers, self.task = bar, workers, TaskID(-1)

    def started(self, keys: int) -> None:
        self.task = self.bar.add_task(f"forecasting on {self.workers} process(es)",
                                      total=keys)

    def progress(self, done: int) -> None:
        self.bar.advance(self.task, done)


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


def _plot_key(conn: Any, path: Path, key: str, found: Forecasts, days: int) -> None:
    from stockflow.adapters.db import demand  # noqa: PLC0415 - see the top
    from stockflow.entrypoints.charts import (  # noqa: PLC0415
        ForecastView,
        Plan,
        forecast_chart,
        thresholds_drawn,
    )

    p = found.planned[key]
    f, s, held = p.forecast, p.suggestion, p.position
    history = found.history.get(key)
    stock = demand.stock_by_day(conn, key, found.first, days)
    applied, unrecorded = thresholds_drawn(
        [(c.at.astimezone(UTC).date(), c.reorder_point, c.safety_stock)
         for c in demand.threshold_changes(conn, key)])
    forecast_chart(path, ForecastView(
        key=key, model=f.model, days=[found.first + timedelta(days=d) for d in range(days)],
        demand=history.shipped.tolist() if history else [0.0] * days,
        lost=history.lost.tolist() if history else [0.0] * days,
        on_hand=stock.on_hand.tolist(), position=stock.position.tolist(),
        on_order=stock.on_order.tolist(), mean=f.mean,
        intervals={lv: (list(lo), list(hi)) for lv, (lo, hi) in f.intervals.items()},
        applied=applied, unrecorded=unrecorded,
        plan=Plan(available=held.available, in_transit=held.in_transit,
                  on_order=held.on_order, level=s.order_up_to, safety_stock=s.safety_stock,
                  suggested=s.suggested_quantity, lead_time_days=s.lead_time_days,
                  review_days=s.review_days, service_level=s.service_level)))


def cmd_forecast(args: argparse.Namespace, settings: Settings) -> int:
    if args.warehouse and args.key:
        raise StockflowError("--warehouse goes with --all")
    made_at = datetime.now(UTC)  # no later than the run reads the stock
    with migrated_database(settings) as conn:
        with Progress(*_columns(), transient=True, console=Console(stderr=True)) as bar:
            shown = _Bar(bar, args.workers)
            found = forecast_stock(
                conn, key=args.key, warehouse=args.warehouse, days=args.days,
                horizon=args.horizon, workers=args.workers, review_days=args.review_days,
                service_level=args.service_level, started=shown.started,
                progress=shown.progress)
        if args.plot:
            _plot(conn, args, found)
    sent = (0, 0)
    if args.publish or args.apply:
        # Kafka's client loads only when publishing
        from stockflow.usecases.suggestions import publish_suggestions  # noqa: PLC0415

        sent = publish_suggestions(settings, found.planned, found.as_of,
                                   suggestions=args.publish, thresholds=args.apply)
    kept = 0
    if args.keep:
        # after publishing: a kept suggestion says it was published only if it was
        with migrated_database(settings) as conn:
            kept = keep_forecasts(conn, found, made_at=made_at, published=args.publish,
                                  scope=("key" if args.key else f"warehouse {args.warehouse}"
                                         if args.warehouse else "all"))
    timing = {"keys": len(found.held), "read_s": round(found.read_s, 2),
              "forecast_s": round(found.forecast_s, 2), "workers": args.workers}
    planned, skipped, summary = found.planned, found.skipped, found.summary
    service = held_out_service(found) if args.backtest else {}
    if args.json:
        doc: dict[str, Any] = {
            "as_of": found.as_of.isoformat(), "horizon": args.horizon,
            "keys": [{"key": k, **_reported(p.forecast), **asdict(p.suggestion),
                      "on_hand": p.position.on_hand, "available": p.position.available,
                      "in_transit": p.position.in_transit, "on_order": p.position.on_order}
                     for k, p in planned.items()],
            "skipped": skipped, "published": {"reorder.suggested": sent[0],
                                              "stock.thresholds-set": sent[1]},
            "kept": kept, "timing": timing}
        if args.backtest:
            doc["backtest"] = {**asdict(summary),
                               "chosen_vs_baseline": summary.versus_baseline(),
                               "service_level": [{"class": c, "target": t, **k._asdict()}
                                                 for (c, t), k in service.items()]}
        json.dump(doc, sys.stdout, default=str)
        print()
    else:
        _print(found, service, args, sent, timing)
        if args.keep:
            print(f"kept {kept:,} forecasts for the console's key pages (--no-keep: none)",
                  file=sys.stderr)
    return 0


def _reported(forecast: KeyForecast) -> dict[str, Any]:
    """A forecast's fields as --json reports them: not its outlook (a year of demand and
    the backtest's errors, the reorder rule's input)."""
    return {name: value for name, value in asdict(forecast).items() if name != "outlook"}


def _plot(conn: Any, args: argparse.Namespace, found: Forecasts) -> None:
    """The chart --plot asks for: the key's, or with --all the backtest's."""
    if args.key and args.key in found.planned:
        _plot_key(conn, args.plot, args.key, found, args.days)
    elif args.key:
        raise StockflowError(f"--plot: {found.skipped[args.key]}")
    else:
        from stockflow.entrypoints.charts import backtest_chart  # noqa: PLC0415 - see the top
        backtest_chart(args.plot, found.summary, held_out_service(found))
    print(f"chart written to {args.plot}", file=sys.stderr)


def _print(found: Forecasts, service: dict[tuple[str, float], Kept], args: argparse.Namespace,
           sent: tuple[int, int], timing: dict[str, Any]) -> None:
    out = Console(soft_wrap=True)  # lines grep whole; tables go through `show`
    planned, skipped, summary = found.planned, found.skipped, found.summary
    if args.backtest and planned:
        show(_backtest_table(summary))
        cover = ", ".join(f"{lv}% intervals hold {summary.coverage[lv]:.1%} of actuals"
                          for lv in sorted(summary.coverage))
        gain = summary.versus_baseline()["all"]
        out.print(f"chosen models' MASE {gain:+.1%} against the baseline; {cover}")
        for (cls, target), k in service.items():
            out.print(f"held out, the reorder levels kept {k.kept / k.cycles:.1%} of "
                      f"{k.cycles:,} {cls} keys' cycles free of a stock-out "
                      f"(target {target:.0%})")
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

    _keep_scoped(args, settings, demand.lead_times, demand.set_lead_time,
                 demand.clear_lead_time, what="lead time", default=reorder.LEAD_TIME_DAYS,
                 shown=lambda days: f"{days:>4} d")
    return 0


def cmd_service_level(args: argparse.Namespace, settings: Settings) -> int:
    from stockflow.adapters.db import demand  # noqa: PLC0415 - see the top

    _keep_scoped(args, settings, demand.service_levels, demand.set_service_level,
                 demand.clear_service_level, what="service-level target",
                 default=reorder.SERVICE_LEVEL, shown=lambda level: f"{level:>6.1%}")
    return 0


V = TypeVar("V")


def _keep_scoped(args: argparse.Namespace, settings: Settings,
                 read: Callable[[Any], dict[str, V]], put: Callable[[Any, str, V], None],
                 clear: Callable[[Any, str], bool], *, what: str, default: V,
                 shown: Callable[[V], str]) -> None:
    """Set or clear a warehouse's or a key's setting as `args` ask, then list them all."""
    with migrated_database(settings) as conn:
        if args.action == "set":
            put(conn, args.scope, args.value)
        elif args.action == "clear" and not clear(conn, args.scope):
            raise StockflowError(f"{args.scope} has no {what} of its own")
        conn.commit()
        table = read(conn)
    for scope in sorted(table):
        print(f"{scope:<40} {shown(table[scope])}")
    print(f"{'(default)':<40} {shown(default)}")


def _lead_time_days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= 365:
        raise argparse.ArgumentTypeError(f"a lead time is 1 to 365 days: {text}")
    return days


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
    """Add `forecast`, `lead-time` and `service-level` to the CLI's subcommands."""
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
    p.add_argument("--no-keep", dest="keep", action="store_false",
                   help="a what-if run: do not keep its forecasts and suggestions for the "
                        "console (every run keeps them by default, replacing the keys' last)")
    p.set_defaults(func=cmd_forecast)

    for name, command, value, metavar, meaning in (
            ("lead-time", cmd_lead_time, _lead_time_days, "DAYS",
             "days from ordering to receiving"),
            ("service-level", cmd_service_level, _service_level, "LEVEL",
             "share of replenishment cycles without a stock-out, e.g. 90%% or 0.9")):
        scoped = sub.add_parser(name, help=f"the {name.replace('-', ' ')}s reorder "
                                           f"suggestions use, per warehouse or key")
        scoped.add_argument("action", choices=("list", "set", "clear"))
        scoped.add_argument("scope", nargs="?", help="a warehouse, or a key SKU@WH (wins "
                                                     "over its warehouse's)")
        scoped.add_argument("value", nargs="?", type=value, metavar=metavar,
                            help=f"with set: {meaning}")
        scoped.set_defaults(func=partial(_checked_scoped, command))


def _checked_scoped(command: Callable[[argparse.Namespace, Settings], int],
                    args: argparse.Namespace, settings: Settings) -> int:
    if args.action != "list" and not args.scope:
        raise StockflowError(f"{args.action} needs a scope")
    if args.action == "set" and args.value is None:
        raise StockflowError("set needs a value")
    return command(args, settings)
