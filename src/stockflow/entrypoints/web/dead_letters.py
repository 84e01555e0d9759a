"""The console's dead letters: the DLQ's newest messages (by reason, if asked), one in
full (why, where from, its key, value and headers as sent), and a re-drive of one once
its cause is fixed (scope `admin`: it puts an event back on an input topic). The same
as `stockflow dlq list|show|redrive`; Kafka is read in a worker thread."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from stockflow import StockflowError
from stockflow.adapters import dead_letters
from stockflow.contract.events import Reason
from stockflow.contract.topics import Topics
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Visitor, Who, check_posted

__all__ = ["router"]

LISTED = 100
router = APIRouter(prefix="/console/dead-letters", include_in_schema=False)


@router.get("")
async def listed(request: Request, who: Who,
                 reason: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    settings = services_of(request).settings
    reason = reason if reason in {r.value for r in Reason} else None
    found = await asyncio.to_thread(dead_letters.newest, settings,
                                    Topics(settings.topic_prefix), LISTED, reason=reason)
    return page(request, "dead_letters.html", who=who, letters=found, reason=reason or "",
                reasons=sorted(r.value for r in Reason), listed=LISTED)


async def _letter_page(request: Request, who: Visitor, partition: int, offset: int,
                       status: int = 200, done: str | None = None,
                       error: str | None = None) -> Response:
    settings = services_of(request).settings
    letter = await asyncio.to_thread(dead_letters.one, settings,
                                     Topics(settings.topic_prefix), partition, offset)
    if letter is None:
        return page(request, "missing.html", 404, who=who,
                    what=f"No DLQ message at {partition}:{offset}.")
    event = letter.event
    return page(request, "dead_letter.html", status, who=who, letter=letter, shown=letter.doc(),
                pretty=json.dumps(event, indent=2, ensure_ascii=False) if event else None,
                done=done, error=error)


@router.get("/{partition}/{offset}")
async def one(request: Request, who: Who, partition: int, offset: int) -> Response:
    return await _letter_page(request, who, partition, offset)


@router.post("/{partition}/{offset}/redrive")
async def redrive(request: Request, who: Who, partition: int, offset: int) -> Response:
    check_posted(request, who, await request.form())
    if not who.may("admin"):
        raise HTTPException(403, "re-driving needs an API key with the `admin` scope")
    settings = services_of(request).settings
    topics = Topics(settings.topic_prefix)
    letter = await asyncio.to_thread(dead_letters.one, settings, topics, partition, offset)
    if letter is None:
        return page(request, "missing.html", 404, who=who,
                    what=f"No DLQ message at {partition}:{offset}.")
    try:
        await asyncio.to_thread(dead_letters.redrive, settings, topics, letter)
    except StockflowError as exc:
        return await _letter_page(request, who, partition, offset, 422, error=str(exc))
    return await _letter_page(request, who, partition, offset, done=(
        f"Sent back to {letter.topic}, partition {letter.source_partition}. If its cause "
        "is not fixed, it comes back to the DLQ as a new message."))
