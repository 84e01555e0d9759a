"""The warehouse registry over HTTP: list, read and follow the history of warehouses
(scope `read`), register and change them (scope `admin`). The actor of a change is
`api-key:<the key's name>`. See `stockflow.adapters.db.warehouses`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from stockflow.adapters.db import warehouses as registry
from stockflow.domain import warehouses as domain
from stockflow.domain.inputs import NAME_PATTERN, Name, Whole
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.models import Problem, problems
from stockflow.entrypoints.api.services import Pool

__all__ = ["router"]

router = APIRouter(prefix="/v1/warehouses", tags=["warehouses"], route_class=Authenticated)
Reader = Annotated[Caller, Depends(require("read"))]
Admin = Annotated[Caller, Depends(require("admin"))]
Code = Annotated[str, Path(pattern=NAME_PATTERN, description="the warehouse's code")]

_READ = problems("read")
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no warehouse has this code"}}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **problems("admin"),
    400: {"model": Problem, "description": "the body could not be read (not UTF-8 JSON)"}}
_FORBID = ConfigDict(extra="forbid")

WarehouseName = Annotated[str, StringConstraints(
    min_length=1, max_length=domain.MAX_TEXT, pattern=domain.TEXT_PATTERN)]
Priority = Annotated[int, Field(strict=True, ge=0, le=domain.MAX_PRIORITY,
                                description="lower is chosen first"), Whole]


class Location(BaseModel):
    """Where a warehouse is, in decimal degrees: both coordinates or no location."""

    model_config = _FORBID

    lat: float = Field(strict=True, ge=-90, le=90, description="latitude")
    lon: float = Field(strict=True, ge=-180, le=180, description="longitude")

    def value(self) -> domain.Location:
        return domain.Location(self.lat, self.lon)


class WarehouseIn(BaseModel):
    """A warehouse to register."""

    model_config = _FORBID

    code: Name = Field(description="1 to 64 of A-Z a-z 0-9 . _ -, as in keys SKU@WAREHOUSE; "
                                   "it never changes")
    name: WarehouseName
    priority: Priority = domain.DEFAULT_PRIORITY
    active: StrictBool = Field(default=True, description="false: allocation leaves it alone")
    location: Location | None = None


class WarehousePatch(BaseModel):
    """What to change; a field left out stays as it is."""

    model_config = _FORBID

    name: WarehouseName | SkipJsonSchema[None] = None
    priority: Priority | SkipJsonSchema[None] = None
    active: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="false: allocation stops choosing it; true: it may again")
    location: Location | None = Field(default=None, description="null forgets it")

    @field_validator("name", "priority", "active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # a default is not validated: only an explicit null gets here
            raise ValueError("may be left out, not null")
        return value

    def patch(self) -> domain.Patch:
        where = self.location.value() if self.location else None
        return domain.Patch(self.name, self.priority, self.active,
                            where if "location" in self.model_fields_set else domain.KEEP)


class Warehouse(BaseModel):
    code: str
    name: str
    priority: int = Field(description="lower is chosen first")
    active: bool = Field(description="false: allocation never chooses it")
    location: Location | None
    created_at: datetime
    updated_at: datetime = Field(description="when it last changed")


class Warehouses(BaseModel):
    items: list[Warehouse] = Field(description="by priority, then code: allocation's order")


_WAS = "before the change; null for a warehouse's addition"


class NameChange(BaseModel):
    old: str | None = Field(description=_WAS)
    new: str


class PriorityChange(BaseModel):
    old: int | None = Field(description=_WAS)
    new: int


class ActiveChange(BaseModel):
    old: bool | None = Field(description=_WAS)
    new: bool


class LocationChange(BaseModel):
    old: Location | None = Field(description=_WAS + " (or when it had none)")
    new: Location | None = Field(description="null: forgotten")


class Changes(BaseModel):
    """The fields the change changed (the others are left out)."""

    name: NameChange | SkipJsonSchema[None] = None
    priority: PriorityChange | SkipJsonSchema[None] = None
    active: ActiveChange | SkipJsonSchema[None] = None
    location: LocationChange | SkipJsonSchema[None] = None


class Change(BaseModel):
    id: int = Field(description="changes are numbered in the order they were made")
    code: str
    actor: str = Field(description="who: `api-key:<name>`, or `cli:<user>` or an --actor")
    action: Literal["added", "changed"]
    changed_at: datetime
    changes: Changes


class History(BaseModel):
    code: str
    items: list[Change] = Field(description="oldest first")


def _actor(caller: Caller) -> str:
    return f"api-key:{caller.name}"


@router.get("", response_model=Warehouses, responses=_READ)
async def list_warehouses(
    pool: Pool, _: Reader,
    inactive: Annotated[bool, Query(alias="all", description="inactive ones too")] = False,
) -> Any:
    """The registered warehouses allocation may choose from (with `all=true`, inactive ones
    too), in the order the `priority` strategy ranks them."""
    async with pool.connection() as conn:
        found = await registry.listed_async(conn, inactive=inactive)
    return {"items": [r.doc() for r in found]}


@router.get("/{code}", response_model=Warehouse, responses={**_READ, **_NOT_FOUND})
async def get_warehouse(code: Code, pool: Pool, _: Reader) -> Any:
    """One warehouse, active or not."""
    async with pool.connection() as conn:
        found = await registry.one_async(conn, code)
    if found is None:
        raise HTTPException(404, str(registry.UnknownWarehouseError(code)))
    return found.doc()


@router.get("/{code}/history", response_model=History, response_model_exclude_unset=True,
            responses={**_READ, **_NOT_FOUND})
async def get_history(code: Code, pool: Pool, _: Reader) -> Any:
    """Every change of the warehouse, from its addition on: who, when, and each field's
    value before and after."""
    async with pool.connection() as conn:
        changes = await registry.history_async(conn, code)
    if not changes:  # each warehouse has at least its addition
        raise HTTPException(404, str(registry.UnknownWarehouseError(code)))
    return {"code": code, "items": [c.doc() for c in changes]}


@router.post("", status_code=201, response_model=Warehouse, responses={
    **_CHANGE, 409: {"model": Problem, "description": "a warehouse has this code already "
                                                     "(nothing changed)"}})
async def add_warehouse(body: WarehouseIn, pool: Pool, response: Response,
                        caller: Admin) -> Any:
    """Register a warehouse. A code that is taken is a conflict, never an update."""
    try:
        wanted = domain.Warehouse(body.code, body.name, body.priority, body.active,
                                  body.location.value() if body.location else None)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    async with pool.connection() as conn:
        try:
            added, _ = await registry.add_async(conn, wanted, actor=_actor(caller))
        except registry.WarehouseExistsError as exc:
            raise HTTPException(409, str(exc)) from None
    response.headers["Location"] = f"{router.prefix}/{added.warehouse.code}"
    return added.doc()


@router.patch("/{code}", response_model=Warehouse, responses={**_CHANGE, **_NOT_FOUND})
async def change_warehouse(code: Code, body: WarehousePatch, pool: Pool,
                           caller: Admin) -> Any:
    """Change some of a warehouse's fields: `active: false` deactivates it (nothing is
    ever deleted), `location: null` forgets where it is. A change that changes nothing
    records nothing."""
    try:
        patch = body.patch()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    async with pool.connection() as conn:
        try:
            after, _ = await registry.update_async(conn, code, patch, actor=_actor(caller))
        except registry.UnknownWarehouseError as exc:
            raise HTTPException(404, str(exc)) from None
    return after.doc()
