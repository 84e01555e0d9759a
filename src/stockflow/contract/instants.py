"""Instants as people and programs write them, read one way by every interface (the CLI's
`--since`/`--until`, the API's `since`, `until` and `time` query parameters).

An instant is RFC 3339 with a UTC offset (`2026-11-01T09:30:00Z`, `...+01:00`), or a
plain date (`2026-11-01`), which means that day's midnight UTC. A time of day without an
offset is refused rather than guessed: the reader's zone and the server's may differ.
Numbers are refused too (some parsers read `0.5` as Unix seconds).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

__all__ = ["INSTANT_HELP", "parse_instant"]

INSTANT_HELP = "RFC 3339 with a UTC offset (2026-11-01T09:30:00Z), or a date: midnight UTC"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                       r"([Zz]|[+-]\d{2}:?\d{2})?")


def parse_instant(text: str) -> datetime:
    """The instant `text` names, timezone-aware; ValueError with a sentence otherwise."""
    shown = text if len(text) <= 40 else f"{text[:40]}..."
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{shown!r} is not a calendar date") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if not _DATETIME.fullmatch(text):
        raise ValueError(f"{shown!r} is not a time: use {INSTANT_HELP}")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # finer than microseconds: truncated
    try:
        at = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown!r} is not a valid time") from None
    if at.tzinfo is None:
        raise ValueError(f"{shown!r} needs a UTC offset, e.g. {text}Z, or give a date alone")
    return at
