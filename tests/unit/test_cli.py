"""The command line itself: every command's help can be shown; what it prints for a
person (tables, the closing summary) and the instants it reads."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from rich.table import Table

from stockflow.entrypoints.cli import parser
from stockflow.entrypoints.console import summary_table
from stockflow.entrypoints.tables import add_column, show


def _commands(p: argparse.ArgumentParser, path: str = "stockflow") -> Iterator[
        tuple[str, argparse.ArgumentParser]]:
    yield path, p
    for action in p._actions:  # noqa: SLF001 - argparse keeps its subcommands nowhere else
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                yield from _commands(child, f"{path} {name}")


def test_every_command_formats_its_help() -> None:
    # a bare % in a help text makes argparse raise on --help, for that command only
    seen = []
    for path, command in _commands(parser()):
        assert "usage:" in command.format_help(), path
        seen.append(path)
    assert "stockflow forecast" in seen and len(seen) > 15


def _wide_table() -> Table:
    table = Table(title="movements by warehouse")
    add_column(table, "warehouse", number=False)
    add_column(table, "event type", number=False)
    for head in ("movements", "units in", "units out", "net units", "value in", "value out",
                 "net value"):
        add_column(table, head, number=True)
    table.add_row("WH-NORTH-EAST", "receipt.received", *_NUMBERS)
    return table


_NUMBERS = ("1,204", "230,812", "1,234,567", "-1,003,755", "230,812.500000",
            "-12,345,678.123456", "-12,114,865.623456")


def test_a_piped_table_keeps_every_number_whole(capsys: pytest.CaptureFixture[str]) -> None:
    show(_wide_table())  # captured: not a terminal, as when piped
    out = capsys.readouterr().out
    assert "…" not in out
    assert all(n in out for n in _NUMBERS), out
    assert max(map(len, out.splitlines())) > 80  # as wide as its content


def test_on_a_terminal_text_wraps_before_a_number_is_cut(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def shown() -> str:
        show(_wide_table())
        return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # styles aside

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: a terminal
    monkeypatch.setenv("COLUMNS", "135")
    out = shown()
    assert "…" not in out
    assert all(n in out for n in _NUMBERS), out
    assert max(map(len, out.splitlines())) <= 135  # the text columns wrapped to fit
    assert "receipt.received" not in out  # (on two lines)
    monkeypatch.setenv("COLUMNS", "60")  # too narrow for the numbers alone
    out = shown()
    assert "…" not in out and all(n in out for n in _NUMBERS), out


def test_the_closing_summary_is_a_table_for_a_person(capsys: pytest.CaptureFixture[str],
                                                     ) -> None:
    show(summary_table({"seconds": 42.1, "published": 21_034, "processed": 1_234_567,
                        "noop": 54, "low_stock_open": {"out_of_stock": 2, "low": 13}}))
    rows = [line.strip("│ ").split("│") for line in capsys.readouterr().out.splitlines()
            if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["seconds", "42.1 s"], ["published", "21,034"], ["processed", "1,234,567"],
        ["no-op", "54"], ["low-stock alerts open", "13 low, 2 out of stock"]]


def test_since_and_until_take_a_plain_date_as_midnight_utc(
        capsys: pytest.CaptureFixture[str]) -> None:
    midnight = datetime(2026, 11, 1, tzinfo=UTC)
    args = parser().parse_args(["report", "movements", "--since", "2026-11-01",
                                "--until", "2026-11-02T09:30:00+01:00"])
    assert args.since == midnight
    assert args.until == datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    replay = parser().parse_args(["webhooks", "replay", "ep_1", "--since", "2026-11-01"])
    assert replay.since == midnight
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "movements", "--since", "2026-11-01T09:30"])
    assert "needs a UTC offset" in capsys.readouterr().err
    help_text = dict(_commands(parser()))["stockflow report"].format_help()
    assert "midnight UTC" in " ".join(help_text.split())
