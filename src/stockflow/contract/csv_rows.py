"""CSV imports: the columns each kind of file takes, and its rows read as event data.

A file is UTF-8 (an Excel byte-order mark is ignored; bytes that are not UTF-8 arrive
as surrogate escapes and make their row bad), comma-separated, with a header row
naming its columns in any order. Each data row is one event of the kind's type. A row that
cannot be one is a `BadRow` naming its line and why; the values are checked again, exactly
as the processor would, when the event is prepared for publishing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from stockflow.contract.events import Reason
from stockflow.domain.inputs import DEFAULT_LIMITS, Limits

__all__ = ["KINDS", "BadRow", "Kind", "Row", "read"]

_WHOLE = re.compile(r"[+-]?[0-9]+")
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


class Kind(NamedTuple):
    """One kind of CSV file: the event its rows become, its columns, and which are integers."""

    type: str  # the input event each row becomes
    required: tuple[str, ...]
    optional: tuple[str, ...]
    integers: frozenset[str]
    reference: str | None  # the data field that names the movement; default: the event id


KINDS = {
    "counts": Kind("stock.counted", ("sku", "warehouse", "on_hand"), ("count_id", "time"),
                   frozenset({"on_hand"}), "count_id"),
    "receipts": Kind("receipt.received", ("sku", "warehouse", "quantity"),
                     ("receipt_id", "po_id", "line_id", "unit_cost", "currency", "time"),
                     frozenset({"quantity"}),
                     "receipt_id"),
    "adjustments": Kind("stock.adjusted", ("sku", "warehouse", "delta", "reason"),
                        ("adjustment_id", "time"), frozenset({"delta"}), "adjustment_id"),
    # a purchase order's lines, one row each: the (po_id, line_id) is the reference
    "purchase-orders": Kind("purchase-order.placed", ("po_id", "sku", "warehouse", "quantity"),
                            ("line_id", "expected_at", "time"), frozenset({"quantity"}), None),
}


class _Bounds(NamedTuple):
    low: int
    high: int
    reason: Reason  # the processor's, for a value outside them
    shown: str  # for a person


def _bounds(column: str, limits: Limits) -> _Bounds:
    """The range the processor accepts in an integer column (see domain.inputs)."""
    q, level = limits.max_quantity, limits.max_level
    if column == "on_hand":
        return _Bounds(0, level, Reason.SCHEMA_VIOLATION, f"0..{level:,}")
    if column == "delta":
        return _Bounds(-q, q, Reason.QUANTITY_OUT_OF_RANGE, f"{-q:,}..{q:,}, not 0")
    return _Bounds(1, q, Reason.QUANTITY_OUT_OF_RANGE, f"1..{q:,}")


class Row(NamedTuple):
    """A good row: its line in the file, its event's data and time."""

    line: int  # in the file, the header being line 1
    data: dict[str, Any]  # the event's data
    time: str | None  # the event's time, if the row gives one


class BadRow(NamedTuple):
    """A row that cannot be published, and why."""

    line: int
    reason: str


def read(text: io.TextIOBase | Iterator[str], kind: Kind,
         limits: Limits = DEFAULT_LIMITS) -> Iterator[Row | BadRow]:
    """Every data row of a CSV text, in order. A bad header is one `BadRow` at line 1, and
    nothing else is read. `limits` are the configured bounds of the processor."""
    rows = csv.reader(text, strict=True)
    try:
        header = [name.strip().lstrip("\ufeff") for name in next(rows, [])]
    except csv.Error as exc:
        yield BadRow(1, f"not CSV: {exc}")
        return
    for column, name in enumerate(header, 1):
        if undecoded := _UNDECODED.search(name):
            byte = ord(undecoded.group()) - 0xDC00
            yield BadRow(1, f"not UTF-8: byte 0x{byte:02X} in the header's column {column} "
                            "(save the file as CSV UTF-8)")
            return
    missing = [c for c in kind.required if c not in header]
    unknown = [c for c in header if c not in kind.required + kind.optional]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {_names(unknown)}"] if unknown else []) + (
            [f"repeated column(s) {_names(repeated)}"] if repeated else [])
        yield BadRow(1, "; ".join(problems) + f" (a {kind.type} file has "
                     f"{', '.join(kind.required)} and optionally {', '.join(kind.optional)})")
        return
    while True:
        line = rows.line_num + 1  # where the row begins: a quoted value may span lines
        try:
            values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(line, f"not CSV: {exc}")
            return  # the reader cannot resynchronise after a broken quote
        if not any(v.strip() for v in values):
            continue  # blank lines are not rows
        yield _row(line, header, values, kind, limits)


def _names(names: list[str]) -> str:
    """Column names for a message, bounded: a binary file's "header" can be megabytes."""
    shown = [n if len(n) <= 40 else f"{n[:40]}..." for n in names[:10]]
    return ", ".join(shown) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")


def _row(line: int, header: list[str], values: list[str], kind: Kind,
         limits: Limits) -> Row | BadRow:
    if _UNDECODED.search("".join(values)):
        return BadRow(line, "not UTF-8")
    if len(values) != len(header):
        return BadRow(line, f"{len(values)} values for {len(header)} columns")
    data: dict[str, Any] = {}
    for name, raw in zip(header, values, strict=True):
        value = raw.strip()
        if not value:
            if name in kind.required:
                return BadRow(line, f"{name} is empty")
            continue
        if name in kind.integers:
            if not _WHOLE.fullmatch(value):
                return BadRow(line, f"{name} is not a whole number: {value[:40]!r}")
            bounds = _bounds(name, limits)
            digits = value.lstrip("+-").lstrip("0")
            if len(digits) > len(str(max(-bounds.low, bounds.high))):
                # past any bound, and past what int() reads (4,300 digits): said here;
                # a value of the bounds' size the processor judges, in its own words
                shown = value if len(value) <= 20 else f"{value[:12]}... ({len(digits)} digits)"
                return BadRow(line, f"{bounds.reason}: {name} {shown} is out of range "
                                    f"({bounds.shown})")
            data[name] = int(value)
        else:
            data[name] = value
    time = data.pop("time", None)
    return Row(line, data, time)
