"""`stockflow report stock|movements|valuation`: reports computed in Postgres, as a table,
CSV or JSON (money as decimal strings), and with `--plot` as a PNG chart too."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from rich.table import Table

from stockflow import StockflowError
from stockflow.adapters.db import reports
from stockflow.adapters.settings import Settings
from stockflow.contract.instants import INSTANT_HELP
from stockflow.entrypoints.app import migrated_database
from stockflow.entrypoints.arguments import instant, png_path
from stockflow.entrypoints.tables import add_column, show

__all__ = ["register"]

_TEXT = frozenset({"warehouse", "key", "event_type", "severity", "currency"})  # not numbers


def _print(rows: list[dict[str, Any]], columns: tuple[str, ...], form: str, title: str) -> None:
    if form == "json":
        print(json.dumps(rows, indent=2, default=str))
    elif form == "csv":
        out = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        out.writeheader()
        out.writerows(rows)
    else:
        table = Table(title=title)
        for c in columns:
            add_column(table, c.replace("_", " "), number=c not in _TEXT)
        for row in rows:
            table.add_row(*(f"{v:,}" if isinstance(v, int) else "" if v is None else str(v)
                            for v in row.values()))
        show(table)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    filters = reports.Filters(args.warehouse, args.since, args.until, args.low_only)
    if args.report != "movements" and args.since:
        raise StockflowError("--since applies to the movements report")
    if args.report == "stock" and args.until:
        raise StockflowError("--until applies to the movements and valuation reports")
    with migrated_database(settings) as conn:
        rows = reports.run(conn, args.report, filters)
        # what only the movements chart draws: the demand turned away, and the net value
        # per currency (the report's column adds up every currency's)
        moved = ((reports.lost_demand(conn, filters), reports.net_value_by_currency(
            conn, filters)) if args.plot and args.report == "movements" else None)
    title = ("low and out-of-stock keys" if args.report == "stock" and args.low_only
             else f"{args.report} by warehouse")
    if args.report == "valuation":
        title = "valuation by warehouse and currency" + (
            f", as of {args.until.isoformat()}" if args.until else "")
    _print(rows, reports.query(args.report, filters).columns, args.format, title)
    if args.plot:
        # matplotlib is slow to import: only the reports that draw pay for it
        from stockflow.entrypoints.charts import Moved, report_chart  # noqa: PLC0415

        try:
            report_chart(args.plot, args.report, rows, title,
                         Moved(*moved) if moved is not None else None)
        except OSError as exc:  # a directory of that name, no permission, a full disk
            raise StockflowError(f"--plot: cannot write {args.plot}: {exc.strerror}") from exc
        print(f"chart written to {args.plot}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `report` to the CLI's subcommands."""
    p = sub.add_parser("report", help="stock, movement and valuation reports, computed in "
                                      "Postgres")
    p.add_argument("report", choices=reports.REPORTS)
    p.add_argument("--warehouse")
    p.add_argument("--since", type=instant,
                   help=f"movements at or after (event time): {INSTANT_HELP}")
    p.add_argument("--until", type=instant,
                   help="movements before (event time); valuation as of then")
    p.add_argument("--low-only", action="store_true",
                   help="stock: list the low and out-of-stock keys instead of totals")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--plot", type=png_path, metavar="FILE.png",
                   help="also draw the report as a chart, a PNG written to FILE.png")
    p.set_defaults(func=cmd_report)
