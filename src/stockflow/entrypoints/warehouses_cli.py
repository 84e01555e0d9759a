"""`stockflow warehouses add|set|list|deactivate|activate|history`: the registry of the
warehouses orders are allocated across, and who changed what in it when (see
`stockflow.adapters.db.warehouses`)."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from stockflow import StockflowError
from stockflow.adapters.db import warehouses as registry
from stockflow.adapters.settings import Settings
from stockflow.domain.warehouses import (
    DEFAULT_PRIORITY,
    KEEP,
    MAX_PRIORITY,
    Keep,
    Location,
    Patch,
    Warehouse,
    check_text,
    describe,
)
from stockflow.entrypoints.app import migrated_database
from stockflow.entrypoints.arguments import location
from stockflow.entrypoints.tables import add_column, show

__all__ = ["describe", "register"]


def _actor(args: argparse.Namespace) -> str:
    return args.actor or f"cli:{getpass.getuser()}"


def _summary(w: Warehouse) -> str:
    where = f"at {w.location}" if w.location else "no location"
    return (f"{w.code} ({w.name}): priority {w.priority}, "
            f"{'active' if w.active else 'inactive'}, {where}")


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        wanted = Warehouse(args.code, args.name, args.priority, not args.inactive,
                           args.location)
    except ValueError as exc:
        raise StockflowError(str(exc)) from None
    with migrated_database(settings) as conn:
        try:
            added, _ = registry.add(conn, wanted, actor=_actor(args))
        except registry.WarehouseExistsError as exc:
            raise StockflowError(f"{exc} (change it with `stockflow warehouses set`)") from None
    print(f"added {_summary(added.warehouse)}")
    return 0


def _update(args: argparse.Namespace, settings: Settings, patch: Patch) -> int:
    with migrated_database(settings) as conn:
        after, change = registry.update(conn, args.code, patch, actor=_actor(args))
    if change is None:
        print(f"{args.code}: nothing to change, {_summary(after.warehouse)}")
    else:
        print(f"{args.code}: {describe(change.changes)}")
    return 0


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    where: Location | Keep | None = KEEP
    if args.location is not None or args.no_location:
        where = args.location
    try:
        patch = Patch(name=args.name, priority=args.priority, location=where)
    except ValueError as exc:
        raise StockflowError(str(exc)) from None
    if patch.empty:
        raise StockflowError("nothing to set: give --name, --priority, --location or "
                             "--no-location")
    return _update(args, settings, patch)


def cmd_activity(args: argparse.Namespace, settings: Settings) -> int:
    return _update(args, settings, Patch(active=args.action == "activate"))


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        found = registry.listed(conn, inactive=args.all)
    if args.json:
        print(json.dumps([r.doc() for r in found], indent=2))
        return 0
    if not found:
        print("no warehouses" + ("" if args.all else " active (--all lists inactive ones too)")
              + "; add one: stockflow warehouses add CODE --name NAME")
        return 0
    table = Table(title="warehouses" if args.all else "active warehouses, in allocation order")
    for header, number in (("code", False), ("name", False), ("priority", True),
                           ("active", False), ("location", False), ("updated (UTC)", False)):
        add_column(table, header, number=number)
    for r in found:
        w = r.warehouse
        table.add_row(w.code, Text(w.name), f"{w.priority:,}", "yes" if w.active else "no",
                      str(w.location or ""), _utc(r.updated_at))
    show(table)
    return 0


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    with migrated_database(settings) as conn:
        changes = registry.history(conn, args.code)
    if args.json:
        print(json.dumps([c.doc() for c in changes], indent=2))
        return 0
    if args.code and not changes:  # each warehouse has at least its addition
        raise registry.UnknownWarehouseError(args.code)
    if not changes:
        print("no changes recorded: no warehouse was added yet")
        return 0
    table = Table(title=f"changes of {args.code}" if args.code else "changes of warehouses")
    for header, number in (("#", True), ("when (UTC)", False), ("code", False),
                           ("actor", False), ("action", False), ("what", False)):
        add_column(table, header, number=number)
    for c in changes:
        table.add_row(str(c.id), _utc(c.changed_at), c.code, Text(c.actor),
                      c.action, Text(describe(c.changes)))
    show(table)
    return 0


def _priority(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_PRIORITY:
        raise argparse.ArgumentTypeError(f"a whole number from 0 to {MAX_PRIORITY:,}: {text}")
    return n


def _actor_name(text: str) -> str:
    try:
        return check_text(text, "--actor")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_LOCATION_HELP = ("LAT,LON in decimal degrees, e.g. 52.52,13.405 (a negative latitude "
                  "after an =: --location=-33.92,18.42)")


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `warehouses` to the CLI's subcommands."""
    p = sub.add_parser("warehouses", help="the warehouses orders are allocated across")
    p = p.add_subparsers(dest="action", required=True)

    def changing(name: str, help_: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = p.add_parser(name, help=help_)
        cmd.add_argument("code")
        cmd.add_argument("--actor", type=_actor_name,
                         help="who makes the change, kept in its history (default: cli:<user>)")
        return cmd

    add = changing("add", "register a warehouse")
    add.add_argument("--name", required=True)
    add.add_argument("--priority", type=_priority, default=DEFAULT_PRIORITY,
                     help=f"lower is chosen first (default {DEFAULT_PRIORITY})")
    add.add_argument("--location", type=location, help=_LOCATION_HELP)
    add.add_argument("--inactive", action="store_true",
                     help="register it inactive: allocation leaves it alone until `activate`")
    add.set_defaults(func=cmd_add)

    set_ = changing("set", "change a warehouse's name, priority or location")
    set_.add_argument("--name")
    set_.add_argument("--priority", type=_priority, help="lower is chosen first")
    where = set_.add_mutually_exclusive_group()
    where.add_argument("--location", type=location, help=_LOCATION_HELP)
    where.add_argument("--no-location", action="store_true", help="forget its location")
    set_.set_defaults(func=cmd_set)

    for action, help_ in (("deactivate", "allocation stops choosing it (nothing is deleted)"),
                          ("activate", "allocation may choose it again")):
        changing(action, help_).set_defaults(func=cmd_activity)

    ls = p.add_parser("list", help="the active warehouses, in allocation order")
    ls.add_argument("--all", action="store_true", help="inactive ones too")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    hist = p.add_parser("history", help="who changed what when, oldest first")
    hist.add_argument("code", nargs="?", help="one warehouse's changes (default: all)")
    hist.add_argument("--json", action="store_true")
    hist.set_defaults(func=cmd_history)
