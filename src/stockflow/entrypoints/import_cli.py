"""`stockflow import FILE.csv --kind counts|receipts|adjustments|purchase-orders`: check
every row, then publish them all in one Kafka transaction, with a progress bar; `--wait`
follows the processor applying them."""

from __future__ import annotations

import argparse
import getpass
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stockflow import StockflowError
from stockflow.adapters.db import imports, store
from stockflow.adapters.publisher import Publisher
from stockflow.adapters.settings import Settings
from stockflow.adapters.signals import stop_on_signals
from stockflow.contract.csv_rows import KINDS
from stockflow.entrypoints.app import migrated_database
from stockflow.usecases.importer import new_import_id, plan, publish

__all__ = ["register"]


def _bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("rows"), TimeElapsedColumn(), console=console)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """SIGINT/SIGTERM while checking publishes nothing; while publishing, the transaction
    (seconds) is finished first; while following, the command just stops."""
    with stop_on_signals() as stop:
        return _import(args, settings, stop)


def _import(args: argparse.Namespace, settings: Settings, stop: threading.Event) -> int:
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)  # lines grep whole
    path = Path(args.file)
    data = path.read_bytes()
    started = time.perf_counter()
    with _bar(err) as bar:
        task = bar.add_task("checking", total=data.count(b"\n"))
        found = plan(data, args.kind,
                     import_id=new_import_id(None if args.id is None else f"cli\n{args.id}"),
                     actor=args.actor or f"csv-import:{getpass.getuser()}",
                     file_name=path.name, settings=settings,
                     progress=lambda n: bar.advance(task, n))
        bar.update(task, total=found.rows, completed=found.rows)
    checked = time.perf_counter() - started
    for bad in found.bad:
        err.print(f"{path.name}:{bad.line}: {bad.reason}", markup=False, highlight=False)
    out.print(f"{found.rows:,} rows checked in {checked:.2f} s: {len(found.messages):,} valid, "
              f"{len(found.bad):,} bad", highlight=False)
    if (refusal := found.refusal(args.allow_partial)) is not None:
        hint = (" (fix them, or pass --allow-partial to import the valid rows)"
                if found.messages else "")
        raise StockflowError(refusal + hint)
    if stop.is_set():
        out.print("stopped: nothing published")
        return 130
    if args.dry_run:
        out.print("dry run: nothing published")
        return 0
    with migrated_database(settings) as conn, \
            Publisher(settings, source="stockflow-import") as publisher:
        sent = time.perf_counter()
        with _bar(err) as bar:
            task = bar.add_task("publishing", total=len(found.messages))
            publish(conn, publisher, found, progress=lambda n: bar.advance(task, n))
        out.print(f"import {found.import_id}: {len(found.messages):,} rows published in one "
                  f"transaction in {time.perf_counter() - sent:.2f} s "
                  f"({time.perf_counter() - started:.2f} s from reading the file)",
                  highlight=False)
        if args.wait:
            return _follow(conn, found.import_id, len(found.messages), stop, err, out)
    return 0


def _follow(conn: store.Conn, import_id: str, rows: int, stop: threading.Event,
            err: Console, out: Console) -> int:
    """Show the processor working through the import until every row has an outcome (or
    a stop)."""
    started = time.perf_counter()
    with _bar(err) as bar:
        task = bar.add_task("processing", total=rows)
        while True:
            got = imports.progress(conn, import_id)
            assert got is not None  # recorded before it was published
            bar.update(task, completed=rows - got.pending)
            if not got.pending or stop.wait(0.5):
                break
    out.print(f"{got.applied:,} applied, {got.noop:,} no-op, {got.rejected:,} "
              f"rejected, {got.pending:,} pending after {time.perf_counter() - started:.2f} s",
              highlight=False)
    for line, reason in got.rejections:
        err.print(f"line {line}: {reason}", markup=False, highlight=False)
    return 0 if not got.rejected else 3


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `import` to the CLI's subcommands."""
    p = sub.add_parser("import", help="import a CSV file of counts, receipts or adjustments",
                       description="Check every row, then publish all of them in one Kafka "
                                   "transaction (nothing, if any row is bad).")
    p.add_argument("file", help="CSV with a header row; its columns: docs/api.md, CSV imports")
    p.add_argument("--kind", required=True, choices=sorted(KINDS))
    p.add_argument("--dry-run", action="store_true", help="check only; publish nothing")
    p.add_argument("--allow-partial", action="store_true",
                   help="publish the valid rows even if some are bad")
    p.add_argument("--id", metavar="NAME", help="name this import: importing again under the "
                                             "name re-sends the same events, which move "
                                             "nothing twice (default: a new import each time)")
    p.add_argument("--actor", help="who is importing, kept in the ledger "
                                   "(default: csv-import:<user>)")
    p.add_argument("--wait", action="store_true",
                   help="follow the processor until every row is applied or rejected")
    p.set_defaults(func=cmd_import)
