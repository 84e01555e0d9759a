"""argparse types the commands share."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from stockflow.contract.instants import parse_instant
from stockflow.domain.warehouses import Location

__all__ = ["instant", "location", "png_path"]


def instant(text: str) -> datetime:
    """An argparse type for `--since`/`--until`: the project's one reader of instants
    (`stockflow.contract.instants`), its refusal shown as argparse's usage error."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def location(text: str) -> Location:
    """An argparse type for `--location LAT,LON` (decimal degrees, e.g. `52.52,13.405`)."""
    lat, comma, lon = text.partition(",")
    if not comma:
        raise argparse.ArgumentTypeError(f"a location is LAT,LON in decimal degrees, e.g. "
                                         f"52.52,13.405; not {text!r}")
    try:
        return Location(_degrees(lat), _degrees(lon))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _degrees(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number of degrees") from None


def png_path(text: str) -> Path:
    """An argparse type for `--plot FILE.png`."""
    # refused before the query runs, rather than after it, with the report lost
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text!r}: the chart is a PNG; name it *.png")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: no directory {str(path.parent)!r} to "
                                         "write the chart in")
    return path
