"""The warehouse registry's values and what reads them at the edges: the limits each value
keeps, `--location LAT,LON`, a change said in words, and the API's bodies (a field left out
of a PATCH stays; `location: null` forgets it; a null name is refused)."""

from __future__ import annotations

import argparse
import asyncio
import math

import httpx
import pytest
from pydantic import ValidationError

from stockflow.adapters.settings import Settings
from stockflow.domain.warehouses import (
    DEFAULT_PRIORITY,
    KEEP,
    MAX_PRIORITY,
    MAX_TEXT,
    Location,
    Patch,
    Warehouse,
)
from stockflow.entrypoints.api.app import build_app
from stockflow.entrypoints.api.warehouses import WarehouseIn, WarehousePatch
from stockflow.entrypoints.arguments import location
from stockflow.entrypoints.cli import parser
from stockflow.entrypoints.warehouses_cli import describe


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


@pytest.mark.parametrize(("text", "lat", "lon"), [
    ("52.52,13.405", 52.52, 13.405), ("-33.92,18.42", -33.92, 18.42), (" 0 , -180 ", 0, -180)])
def test_location_reads_lat_comma_lon(text: str, lat: float, lon: float) -> None:
    assert location(text) == Location(lat, lon)


@pytest.mark.parametrize(("text", "said"), [
    ("52.52", "LAT,LON"), ("52.52,", "not a number"), ("north,13", "not a number"),
    ("91,0", "latitude"), ("0,200", "longitude"), ("nan,0", "latitude"), ("1,2,3", "number")])
def test_location_refuses_what_is_not_a_place(text: str, said: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=said):
        location(text)


def test_the_command_line_takes_a_negative_latitude_after_an_equals_sign() -> None:
    args = parser().parse_args(["warehouses", "add", "CPT", "--name", "Cape Town",
                                "--location=-33.92,18.42", "--priority", "7"])
    assert (args.location, args.priority, args.inactive) == (Location(-33.92, 18.42), 7, False)
    args = parser().parse_args(["warehouses", "set", "CPT", "--no-location"])
    assert args.no_location and args.location is None


def test_a_change_in_words() -> None:
    assert describe({"name": {"old": None, "new": "Main"}, "priority": {"old": None, "new": 100},
                     "active": {"old": None, "new": True},
                     "location": {"old": None, "new": {"lat": 52.5, "lon": 13.4}}}) == (
        'name "Main"; priority 100; active yes; location 52.5,13.4')
    assert describe({"location": {"old": {"lat": 1.5, "lon": 2.0}, "new": None},
                     "active": {"old": True, "new": False},
                     "priority": {"old": 100, "new": 5}}) == (
        "priority 100 -> 5; active yes -> no; location 1.5,2.0 -> none")


def test_a_patch_body_keeps_what_it_leaves_out() -> None:
    assert WarehousePatch.model_validate({}).patch() == Patch()
    assert WarehousePatch.model_validate({"location": None}).patch() == Patch(location=None)
    got = WarehousePatch.model_validate_json(
        '{"name": "North", "priority": 5.0, "active": false, "location": {"lat": 1, "lon": 2}}')
    assert got.patch() == Patch("North", 5, False, Location(1, 2))


@pytest.mark.parametrize("body", [
    {"name": None}, {"priority": None}, {"active": None},  # left out, yes; null, no
    {"priority": "5"}, {"priority": 5.5}, {"priority": -1}, {"active": 1}, {"active": "true"},
    {"code": "WH-2"},  # a code never changes
    {"location": {"lat": 1}}, {"location": {"lon": 1}}, {"location": {"lat": 1, "lon": 2, "x": 3}},
    {"location": {"lat": 90.5, "lon": 0}}, {"location": {"lat": 0, "lon": -180.5}},
    {"location": {"lat": "1", "lon": 2}}, {"name": "a\nb"}, {"unknown": 1},
])
def test_a_patch_body_refuses_what_it_cannot_mean(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WarehousePatch.model_validate(body)


def test_a_new_warehouse_body_needs_a_code_and_a_name() -> None:
    made = WarehouseIn.model_validate({"code": "WH-1", "name": "Main"})
    assert (made.priority, made.active, made.location) == (DEFAULT_PRIORITY, True, None)
    for body in ({"code": "WH-1"}, {"name": "Main"}, {"code": "W 1", "name": "Main"},
                 {"code": "WH-1", "name": "Main", "id": 1}):
        with pytest.raises(ValidationError):
            WarehouseIn.model_validate(body)


async def _answer(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(Settings()))  # no lifespan: no database
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/v1/warehouses", "GET, POST"), ("DELETE", "/v1/warehouses/WH-1", "GET, PATCH"),
    ("PUT", "/v1/warehouses/WH-1/history", "GET"), ("GET", "/v1/receipts", "POST")])
def test_a_405_names_every_method_the_path_has(method: str, path: str, allowed: str) -> None:
    # Starlette's names only the first route's, and a path may have one route per method
    answer = asyncio.run(_answer(method, path))
    assert (answer.status_code, answer.headers["allow"]) == (405, allowed)
