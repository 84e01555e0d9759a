"""The console's administration (scope `admin`): API keys, one per person so the ledger's
actor names who did what (create one, its token shown once on the answer; revoke one),
and the warehouses orders are allocated across: register one, change its name, priority,
location or whether allocation may choose it, and read who changed what (as `stockflow
warehouses add|set|history` and the HTTP API, with the same actor, `api-key:<name>`)."""

from __future__ import annotations

import argparse
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response

from stockflow import StockflowError
from stockflow.adapters.db import api_keys
from stockflow.adapters.db import warehouses as registry
from stockflow.contract.api_keys import SCOPES
from stockflow.domain.inputs import NAME_PATTERN
from stockflow.domain.warehouses import (
    DEFAULT_PRIORITY,
    Location,
    Patch,
    Warehouse,
    describe,
)
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.arguments import location
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Visitor, Who, check_posted
from stockflow.entrypoints.web.sync_db import in_db
from stockflow.usecases.api_keys import create_key

__all__ = ["router"]

router = APIRouter(prefix="/console/admin", include_in_schema=False)
Code = Annotated[str, Path(pattern=NAME_PATTERN)]


def _admin(who: Visitor) -> None:
    if not who.may("admin"):
        raise HTTPException(403, "administration needs an API key with the `admin` scope")


async def _page(request: Request, who: Visitor, status: int = 200, **shown: object) -> Response:
    keys, warehouses = await in_db(request, lambda c: (
        api_keys.keys(c), registry.listed(c, inactive=True)))
    context: dict[str, object] = {"made": None, "error": None, "done": None, **shown}
    return page(request, "admin.html", status, who=who, keys=keys, warehouses=warehouses,
                scopes=SCOPES, default_priority=DEFAULT_PRIORITY, **context)


@router.get("")
async def admin(request: Request, who: Who) -> Response:
    _admin(who)
    return await _page(request, who)


@router.post("/keys")
async def create(request: Request, who: Who) -> Response:
    form = await request.form()
    check_posted(request, who, form)
    _admin(who)
    name = str(form.get("name", "")).strip()
    scopes = [s for s in SCOPES if form.get(f"scope-{s}")]
    try:
        made = await in_db(request, lambda c: create_key(c, name, scopes))
    except StockflowError as exc:
        return await _page(request, who, 422, error=f"No key made: {exc}.")
    return await _page(request, who, made=made, name=name)


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, who: Who, key_id: str) -> Response:
    check_posted(request, who, await request.form())
    _admin(who)
    if key_id == who.caller.key_id:
        return await _page(request, who, 422, error="That is the key you are signed in "
                           "with: sign in with another admin key to revoke it.")
    revoked = await in_db(request, lambda c: api_keys.revoke(c, key_id))
    if not revoked:
        return await _page(request, who, 404, error=f"No active key {key_id[:40]}.")
    return await _page(request, who, done=f"Key {key_id} revoked: it stops working within "
                                          "seconds, and its console sessions end.")


def _actor(who: Visitor) -> str:
    return f"api-key:{who.caller.name}"


def _priority(form: FormData) -> int | None:
    text = str(form.get("priority", "")).strip()
    try:
        return int(text) if text else None
    except ValueError:
        raise ValueError(f"a priority is a whole number, not {text[:40]!r}") from None


def _location(form: FormData) -> Location | None:
    """The form's "lat,lon", or None for a blank field."""
    text = str(form.get("location", "")).strip()
    try:
        return location(text) if text else None
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


@router.post("/warehouses")
async def add_warehouse(request: Request, who: Who) -> Response:
    form = await request.form()
    check_posted(request, who, form)
    _admin(who)
    try:
        priority = _priority(form)
        wanted = Warehouse(str(form.get("code", "")).strip(), str(form.get("name", "")).strip(),
                           DEFAULT_PRIORITY if priority is None else priority,
                           bool(form.get("active")), _location(form))
    except ValueError as exc:
        return await _page(request, who, 422, error=f"No warehouse registered: {exc}.")
    async with services_of(request).pool.connection() as conn:
        try:
            await registry.add_async(conn, wanted, actor=_actor(who))
        except registry.WarehouseExistsError as exc:
            return await _page(request, who, 409, error=f"No warehouse registered: {exc}.")
    return RedirectResponse(f"{router.prefix}/warehouses/{wanted.code}", 303)


async def _warehouse_page(request: Request, who: Visitor, code: str, status: int = 200,
                          **shown: object) -> Response:
    async with services_of(request).pool.connection() as conn:
        found = await registry.one_async(conn, code)
        changes = await registry.history_async(conn, code) if found else []
    if found is None:
        return page(request, "missing.html", 404, who=who,
                    what=f"No warehouse {code} is registered.")
    return page(request, "warehouse.html", status, who=who, registered=found,
                changes=[(c, describe(c.changes)) for c in reversed(changes)],
                **{"error": None, "done": None, **shown})


@router.get("/warehouses/{code}")
async def warehouse(request: Request, who: Who, code: Code) -> Response:
    _admin(who)
    return await _warehouse_page(request, who, code)


@router.post("/warehouses/{code}")
async def change_warehouse(request: Request, who: Who, code: Code) -> Response:
    """The form shows every field: what it sends unchanged records nothing (a blank
    location forgets it)."""
    form = await request.form()
    check_posted(request, who, form)
    _admin(who)
    try:
        patch = Patch(str(form.get("name", "")).strip() or None, _priority(form),
                      bool(form.get("active")), _location(form))
    except ValueError as exc:
        return await _warehouse_page(request, who, code, 422, error=f"Nothing changed: {exc}.")
    async with services_of(request).pool.connection() as conn:
        try:
            _, change = await registry.update_async(conn, code, patch, actor=_actor(who))
        except registry.UnknownWarehouseError as exc:
            return await _warehouse_page(request, who, code, 404, error=f"{exc}.")
    done = "Saved." if change else "Nothing was different: nothing recorded."
    return await _warehouse_page(request, who, code, done=done)
