"""The console's administration (scope `admin`): API keys, one per person so the ledger's
actor names who did what (create one, its token shown once on the answer; revoke one),
and the warehouses orders are allocated across (as `stockflow warehouses list`)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from stockflow import StockflowError
from stockflow.adapters.db import api_keys
from stockflow.adapters.db import warehouses as registry
from stockflow.contract.api_keys import SCOPES
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Visitor, Who, check_posted
from stockflow.entrypoints.web.sync_db import in_db
from stockflow.usecases.api_keys import create_key

__all__ = ["router"]

router = APIRouter(prefix="/console/admin", include_in_schema=False)


def _admin(who: Visitor) -> None:
    if not who.may("admin"):
        raise HTTPException(403, "administration needs an API key with the `admin` scope")


async def _page(request: Request, who: Visitor, status: int = 200, **shown: object) -> Response:
    keys, warehouses = await in_db(request, lambda c: (
        api_keys.keys(c), registry.listed(c, inactive=True)))
    context: dict[str, object] = {"made": None, "error": None, "done": None, **shown}
    return page(request, "admin.html", status, who=who, keys=keys, warehouses=warehouses,
                scopes=SCOPES, **context)


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
