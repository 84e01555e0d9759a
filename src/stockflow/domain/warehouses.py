"""The warehouses orders are allocated across (contract v1.1, Orders), as values: a code,
a name, a priority (lower first), whether allocation may choose it, and where it is. Each
value checks its own limits when made, so a bad one never exists; migration 0013 holds
the same limits in Postgres. The registry that stores them and their history is
`stockflow.adapters.db.warehouses`."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from stockflow.domain.inputs import NAME_PATTERN

__all__ = ["DEFAULT_PRIORITY", "KEEP", "MAX_PRIORITY", "MAX_TEXT", "TEXT_PATTERN", "Keep",
           "Location", "Patch", "Warehouse", "check_text", "describe"]

DEFAULT_PRIORITY = 100  # room to rank a warehouse before the ones added without a priority
MAX_PRIORITY = 1_000_000
MAX_TEXT = 200  # characters of a warehouse's name, and of an actor
# No control characters: names are printed in tables and logs, where they would break
# lines or send terminal escapes.
TEXT_PATTERN = r"^[^\x00-\x1F\x7F]+$"

_CODE = re.compile(NAME_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


@dataclass(frozen=True, slots=True)
class Location:
    """Degrees of latitude in [-90, 90] and longitude in [-180, 180]."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        # `not lo <= x <= hi` also refuses NaN, which compares false with everything
        if not -90 <= self.lat <= 90:
            raise ValueError(f"a latitude is from -90 to 90 degrees, not {self.lat}")
        if not -180 <= self.lon <= 180:
            raise ValueError(f"a longitude is from -180 to 180 degrees, not {self.lon}")

    def __str__(self) -> str:
        return f"{self.lat},{self.lon}"


def check_text(text: str, what: str) -> str:
    """`text` if it is a valid name (or actor), else ValueError naming `what` it is."""
    if len(text) > MAX_TEXT or not _TEXT.match(text):
        raise ValueError(f"{what} is 1 to {MAX_TEXT} characters, none a control character")
    return text


def _check_priority(priority: int) -> int:
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"a priority is from 0 to {MAX_PRIORITY:,} (lower first), "
                         f"not {priority}")
    return priority


@dataclass(frozen=True, slots=True)
class Warehouse:
    """A warehouse orders are allocated across: its code, name, priority, whether active, and
    where it is."""

    code: str
    name: str
    priority: int = DEFAULT_PRIORITY
    active: bool = True  # inactive: never chosen by allocation
    location: Location | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"a warehouse code is 1 to 64 characters of A-Z a-z 0-9 . _ -, "
                             f"not {self.code!r}")
        check_text(self.name, "a warehouse's name")
        _check_priority(self.priority)


class Keep(enum.Enum):
    """The sentinel of a `Patch` that leaves the location as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP  # a location left as it is (None clears it)


@dataclass(frozen=True, slots=True)
class Patch:
    """A partial change of a warehouse: the fields left None (the location: KEEP) stay."""

    name: str | None = None
    priority: int | None = None
    active: bool | None = None
    location: Location | Keep | None = KEEP

    def __post_init__(self) -> None:
        if self.name is not None:
            check_text(self.name, "a warehouse's name")
        if self.priority is not None:
            _check_priority(self.priority)

    @property
    def empty(self) -> bool:
        """Whether the patch changes nothing."""
        return (self.name is None and self.priority is None and self.active is None
                and self.location is KEEP)


def _shown(field: str, value: Any) -> str:
    if value is None:
        return "none"
    if field == "location":
        return f"{value['lat']},{value['lon']}"
    if field == "active":
        return "yes" if value else "no"
    return json.dumps(value, ensure_ascii=False) if field == "name" else str(value)


def describe(changes: dict[str, dict[str, Any]]) -> str:
    """A change in words, its fields in a fixed order: `priority 100 -> 5; active yes -> no`
    (with only new values for a warehouse's addition)."""
    said = []
    for field in ("name", "priority", "active", "location"):
        if field in changes:
            old, new = changes[field]["old"], changes[field]["new"]
            said.append(f"{field} {_shown(field, new)}" if old is None and new is not None
                        else f"{field} {_shown(field, old)} -> {_shown(field, new)}")
    return "; ".join(said)
