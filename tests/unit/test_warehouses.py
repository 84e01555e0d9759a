"""The warehouse registry's values: the limits each value keeps, and a patch that tells
keeping a location from forgetting it."""

from __future__ import annotations

import math

import pytest

from stockflow.domain.warehouses import (
    DEFAULT_PRIORITY,
    KEEP,
    MAX_PRIORITY,
    MAX_TEXT,
    Location,
    Patch,
    Warehouse,
)


@pytest.mark.parametrize(("lat", "lon"), [(-90, -180), (90, 180), (0, 0), (52.52, 13.405)])
def test_a_location_takes_every_latitude_and_longitude(lat: float, lon: float) -> None:
    assert Location(lat, lon) == Location(float(lat), float(lon))


@pytest.mark.parametrize(("lat", "lon", "said"), [
    (90.000001, 0, "latitude"), (-91, 0, "latitude"), (0, 180.5, "longitude"),
    (0, -181, "longitude"), (math.nan, 0, "latitude"), (0, math.inf, "longitude")])
def test_a_location_off_the_globe_is_refused(lat: float, lon: float, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        Location(lat, lon)


def test_a_warehouse_keeps_to_the_limits_of_its_fields() -> None:
    made = Warehouse("WH-1.a_b", "Berlin [main], Halle 2")
    assert (made.priority, made.active, made.location) == (DEFAULT_PRIORITY, True, None)
    Warehouse("W" * 64, "n" * MAX_TEXT, 0)
    Warehouse("W", "ü ☃", MAX_PRIORITY)
    for code in ("", "W" * 65, "WH 1", "SKU@WH", "WH/1"):
        with pytest.raises(ValueError, match="code"):
            Warehouse(code, "name")
    for name in ("", "n" * (MAX_TEXT + 1), "line\nbreak", "tab\t", "esc\x1b[31m", "nul\x00"):
        with pytest.raises(ValueError, match="name"):
            Warehouse("WH-1", name)
    for priority in (-1, MAX_PRIORITY + 1):
        with pytest.raises(ValueError, match="priority"):
            Warehouse("WH-1", "name", priority)


def test_a_patch_tells_keeping_a_location_from_forgetting_it() -> None:
    assert Patch().empty
    assert Patch().location is KEEP
    assert not Patch(location=None).empty  # forget it
    assert not Patch(active=False).empty
    with pytest.raises(ValueError, match="priority"):
        Patch(priority=-5)
    with pytest.raises(ValueError, match="name"):
        Patch(name="")


















