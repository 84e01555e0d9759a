"""Tables for people (rich): numbers are never cut."""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["add_column", "show"]

_MEASURING = 100_000  # columns: wide enough for any table's natural width
_NARROWEST = 8  # characters a text column keeps however narrow the terminal


def add_column(table: Table, header: str, *, number: bool) -> None:
    """A number column is right-aligned and its numbers are never cut or wrapped (printed
    by `show`); a text column wraps, folding a word longer than the column."""
    table.add_column(header, justify="right" if number else "left", no_wrap=number,
                     overflow="fold")


def show(table: Table) -> None:
    """Print `table` on stdout with every number whole. Piped or redirected, it is as wide
    as its content: rich would squeeze it into 80 columns and cut numbers (`230,8…`). On a
    terminal too narrow for it, number columns keep the width of their widest number (their
    headers wrap) and text columns share the rest, wrapping; if the numbers alone are wider
    than the terminal, so is the table, and the terminal wraps its lines: no digit is lost.
    (rich's own narrowing ends by cutting every column alike, numbers included.)"""
    terminal = Console()
    width = _width(table)
    if terminal.is_terminal and width > terminal.width:
        _fit(table, terminal.width)
        width = max(terminal.width, _width(table))
    Console(width=width).print(table)


def _width(table: Table) -> int:
    measuring = Console(width=_MEASURING, file=io.StringIO())
    return Measurement.get(measuring, measuring.options, table).maximum


def _fit(table: Table, room: int) -> None:
    """Fix every column's width so that the table takes `room` if its numbers allow."""
    texts = [c for c in table.columns if not c.no_wrap]
    for column in table.columns:
        if column.no_wrap:  # a number column, see add_column
            column.width = _widest([*str(column.header).split(), *map(str, column.cells)])
            column.no_wrap = False  # its header may wrap now; its numbers fit
        else:
            column.width = _widest([str(column.header), *map(str, column.cells)])
    wanted = [c.width or 1 for c in texts]
    spare = room - (_width(table) - sum(wanted))  # what borders, padding and numbers leave
    for column, share in zip(texts, _shares(wanted, max(spare, _NARROWEST * len(texts))),
                             strict=True):
        column.width = share


def _widest(texts: list[str]) -> int:
    return max((cell_len(line) for text in texts for line in text.splitlines()), default=1)


def _shares(wanted: list[int], room: int) -> list[int]:
    """`room` split among columns: none gets more than it wants, the others share evenly."""
    got = [0] * len(wanted)
    left = room
    order = sorted(range(len(wanted)), key=wanted.__getitem__)
    for n, i in enumerate(order):
        got[i] = max(1, min(wanted[i], left // (len(order) - n)))
        left -= got[i]
    return got
