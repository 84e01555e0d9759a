"""`stockflow dlq list|show|redrive`: the dead-letter topic's newest messages, one in full
(why, where from, the original bytes), and a re-drive of one to where it came from once
its cause is fixed (`stockflow.adapters.dead_letters`)."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from rich.table import Table
from rich.text import Text

from stockflow import StockflowError
from stockflow.adapters import dead_letters
from stockflow.adapters.dead_letters import DeadLetter
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import Topics
from stockflow.entrypoints.tables import add_column, show

__all__ = ["register"]

_PLACE = re.compile(r"([0-9]{1,6}):([0-9]{1,19})")


def _place(text: str) -> tuple[int, int]:
    found = _PLACE.fullmatch(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"PARTITION:OFFSET of the DLQ, e.g. 0:17; got {text!r}")
    return int(found[1]), int(found[2])


def _found(settings: Settings, place: tuple[int, int]) -> DeadLetter:
    letter = dead_letters.one(settings, Topics(settings.topic_prefix), *place)
    if letter is None:
        raise StockflowError(f"no DLQ message at {place[0]}:{place[1]} (list them: "
                             "stockflow dlq list)")
    return letter


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = dead_letters.newest(settings, Topics(settings.topic_prefix), args.limit,
                                reason=args.reason)
    if args.json:
        print(json.dumps([d.doc() for d in found], indent=2))
        return 0
    if not found:
        print("the DLQ holds no message" + (f" with reason {args.reason}" if args.reason
                                            else ""))
        return 0
    table = Table(title=f"the DLQ's newest {len(found)}, newest first")
    for header, number in (("place", False), ("dead-lettered (UTC)", False),
                           ("reason", False), ("from", False), ("key", False),
                           ("message", False)):
        add_column(table, header, number=number)
    for d in found:
        table.add_row(d.place, f"{d.at:%Y-%m-%d %H:%M:%S}" if d.at else "",
                      d.reason, f"{d.topic} {d.source_partition}:{d.source_offset}",
                      Text((d.key or b"").decode("utf-8", "replace")), Text(d.message))
    show(table)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(_found(settings, args.place).doc(), indent=2, ensure_ascii=False))
    return 0


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    letter = _found(settings, args.place)
    try:
        dead_letters.redrive(settings, Topics(settings.topic_prefix), letter)
    except dead_letters.RedriveRefusedError as exc:
        raise StockflowError(str(exc)) from None
    print(f"re-drove {letter.place} to {letter.topic} partition {letter.source_partition}; "
          "if its cause is not fixed it comes back to the DLQ")
    return 0


def register(sub: Any) -> None:  # argparse's _SubParsersAction
    """Add `dlq` to the CLI's subcommands."""
    p = sub.add_parser("dlq", help="the dead-letter topic: list, show and re-drive messages")
    p = p.add_subparsers(dest="action", required=True)
    listing = p.add_parser("list", help="the newest messages, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--reason", help="only those with this reason, e.g. negative_result")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    showing = p.add_parser("show", help="one message in full: why, where from, its bytes")
    showing.add_argument("place", type=_place, metavar="PARTITION:OFFSET")
    showing.set_defaults(func=cmd_show)
    again = p.add_parser("redrive", help="send one back to where it came from, once its "
                                         "cause is fixed")
    again.add_argument("place", type=_place, metavar="PARTITION:OFFSET")
    again.set_defaults(func=cmd_redrive)
