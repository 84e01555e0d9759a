"""Query parameter types shared by the routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from stockflow.contract.instants import INSTANT_HELP, parse_instant

__all__ = ["InstantParam"]


def _instant(value: object) -> object:
    return parse_instant(value) if isinstance(value, str) else value


# An instant in a query, read as every interface reads one (a time without its offset or
# a number is refused: `0.5` was read as Unix seconds).
InstantParam = Annotated[datetime, BeforeValidator(_instant), WithJsonSchema({
    "type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}],
    "description": INSTANT_HELP})]
