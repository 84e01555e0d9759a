"""argparse types the commands share."""

from __future__ import annotations

import argparse
from datetime import datetime

from stockflow.contract.instants import parse_instant

__all__ = ["instant"]


def instant(text: str) -> datetime:
    """An argparse type for `--since`/`--until`: the project's one reader of instants
    (`stockflow.contract.instants`), its refusal shown as argparse's usage error."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
