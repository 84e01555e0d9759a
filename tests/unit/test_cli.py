"""The command line itself: every command's help can be shown."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from stockflow.entrypoints.cli import parser


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
