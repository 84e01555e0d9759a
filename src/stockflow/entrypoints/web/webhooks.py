"""The console's webhooks: the endpoints and the delivery queue's depth; an endpoint's
deliveries with their attempts; and, with the `admin` scope, replaying past events to
it, rotating its signing secret (the new one shown once, on the answer to the rotation)
and disabling or enabling it. Endpoint URLs are shown to their host only: a path or
query may carry the receiver's own token. The same as `stockflow webhooks`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from stockflow.adapters.db import store
from stockflow.adapters.db import webhooks as hooks
from stockflow.contract.instants import parse_instant
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Visitor, Who, check_posted
from stockflow.entrypoints.web.sync_db import in_db
from stockflow.usecases.webhooks import replay_since, rotate_secret

__all__ = ["router", "shown_url"]

DELIVERIES_LISTED = 100
router = APIRouter(prefix="/console/webhooks", include_in_schema=False)


def shown_url(url: str) -> str:
    """A URL as the console shows it: scheme and host, the rest elided."""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{rest}"


@router.get("")
async def endpoints(request: Request, who: Who) -> Response:
    found, depth = await in_db(request, lambda c: (hooks.endpoints(c), hooks.queue_depth(c)))
    return page(request, "webhooks.html", who=who, endpoints=found, depth=depth,
                shown_url=shown_url)


async def _endpoint_page(request: Request, who: Visitor, endpoint_id: str, *,
                         failed: bool = False, status: int = 200, done: str | None = None,
                         secret: str | None = None, error: str | None = None) -> Response:
    def read(conn: store.Conn) -> tuple[hooks.Endpoint | None, list[hooks.Delivery]]:
        ep = hooks.endpoint(conn, endpoint_id)
        return ep, (hooks.deliveries(conn, endpoint_id, failed_only=failed,
                                     limit=DELIVERIES_LISTED) if ep else [])

    ep, rows = await in_db(request, read)
    if ep is None:
        return page(request, "missing.html", 404, who=who,
                    what=f"No webhook endpoint {endpoint_id[:40]}.")
    return page(request, "webhook.html", status, who=who, ep=ep, deliveries=rows,
                failed=failed, done=done, secret=secret, error=error, shown_url=shown_url,
                listed=DELIVERIES_LISTED)


@router.get("/{endpoint_id}")
async def endpoint(request: Request, who: Who, endpoint_id: str,
                   failed: Annotated[bool, Query()] = False) -> Response:
    return await _endpoint_page(request, who, endpoint_id, failed=failed)


async def _admin_form(request: Request, who: Visitor) -> dict[str, str]:
    form = await request.form()
    check_posted(request, who, form)
    if not who.may("admin"):
        raise HTTPException(403, "managing webhooks needs an API key with the `admin` scope")
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _known(request: Request, endpoint_id: str) -> hooks.Endpoint:
    ep = await in_db(request, lambda c: hooks.endpoint(c, endpoint_id))
    if ep is None:
        raise HTTPException(404, "no such webhook endpoint")
    return ep


@router.post("/{endpoint_id}/rotate")
async def rotate(request: Request, who: Who, endpoint_id: str) -> Response:
    await _admin_form(request, who)
    await _known(request, endpoint_id)
    settings = services_of(request).settings
    made = await in_db(request, lambda c: rotate_secret(c, settings, endpoint_id))
    return await _endpoint_page(
        request, who, endpoint_id, secret=made.secret,
        done=f"A new signing secret, shown this once: give it to the receiver. The previous "
             f"one also signs for {made.grace}.")


@router.post("/{endpoint_id}/state")
async def state(request: Request, who: Who, endpoint_id: str) -> Response:
    form = await _admin_form(request, who)
    await _known(request, endpoint_id)
    enabled = form.get("state") == "enabled"
    await in_db(request, lambda c: hooks.set_state(
        c, endpoint_id, enabled=enabled, reason=f"disabled by {who.caller.name} (console)"))
    return RedirectResponse(f"/console/webhooks/{endpoint_id}", 303)


@router.post("/{endpoint_id}/replay")
async def replay(request: Request, who: Who, endpoint_id: str) -> Response:
    form = await _admin_form(request, who)
    ep = await _known(request, endpoint_id)
    try:
        since = parse_instant(form.get("since", ""))
        until: datetime | None = parse_instant(form["until"]) if form.get("until") else None
    except ValueError as exc:
        return await _endpoint_page(request, who, endpoint_id, status=422,
                                    error=f"{exc}. Nothing was queued.")
    queued = await in_db(request, lambda c: replay_since(c, ep, since, until))
    return await _endpoint_page(
        request, who, endpoint_id,
        done=f"{queued:,} deliver{'y' if queued == 1 else 'ies'} queued again.")
