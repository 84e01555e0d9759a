"""The console's imports page: upload a CSV file, see every bad row before anything is
published, check only or publish, then follow the processor through it. Needs the
`write` scope; a read-only visitor sees the imports, not the form."""

from __future__ import annotations

import asyncio
from typing import Annotated

from confluent_kafka import KafkaException
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from stockflow import StockflowError
from stockflow.adapters.db import imports
from stockflow.adapters.publisher import PublishError
from stockflow.contract.csv_rows import KINDS
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Visitor, Who, check_posted
from stockflow.usecases.importer import IMPORT_ID, MAX_BYTES, new_import_id, plan

__all__ = ["router"]

BAD_ROWS_SHOWN = 1000
RECENT_SHOWN = 20  # imports listed, newest first
router = APIRouter(prefix="/console/imports", include_in_schema=False)


async def _form(request: Request, who: Visitor, status: int = 200,
                **shown: object) -> Response:
    async with services_of(request).pool.connection() as conn:
        recent = await imports.recent_async(conn, RECENT_SHOWN)
    context: dict[str, object] = {"kinds": sorted(KINDS), "kind": None, "checked": None,
                                  "error": None, "max_bytes": MAX_BYTES, **shown}
    return page(request, "imports.html", status, who=who, recent=recent, **context)


@router.get("")
async def imports_page(request: Request, who: Who) -> Response:
    return await _form(request, who)


@router.post("")
async def import_posted(request: Request, who: Who) -> Response:
    form = await request.form()
    check_posted(request, who, form)
    if not who.may("write"):
        raise HTTPException(403, "your API key may look, not import (it lacks `write`)")
    kind, upload, publish = str(form.get("kind") or ""), form.get("file"), \
        form.get("action") == "publish"
    if kind not in KINDS:
        return await _form(request, who, 422, error="Choose what the file holds.")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _form(request, who, 422, kind=kind, error="Choose a file to upload.")
    data = await upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return await _form(request, who, 413, kind=kind,
                     error=f"The file is larger than {MAX_BYTES:,} bytes: split it.")
    services = services_of(request)
    try:
        found = await asyncio.to_thread(
            plan, data, kind, import_id=new_import_id(), actor=f"api-key:{who.caller.name}",
            file_name=upload.filename[:200], settings=services.settings)
    except StockflowError as exc:  # not CSV text
        return await _form(request, who, 422, kind=kind, error=f"{exc}. Nothing was imported.")
    refusal = found.refusal(allow_partial=False)
    if refusal is not None or not publish:
        return await _form(request, who, 422 if refusal else 200, kind=kind, checked=found,
                     bad=found.bad[:BAD_ROWS_SHOWN], refusal=refusal)
    try:
        await services.import_sender.send(found)
    except (PublishError, KafkaException) as exc:
        return await _form(request, who, 503, kind=kind,
                     error=f"Kafka did not take the rows ({exc}); nothing was published. "
                           "Try again in a moment.")
    return RedirectResponse(f"/console/imports/{found.import_id}", 303)


@router.get("/{import_id}")
async def import_progress(request: Request, who: Who,
                          import_id: Annotated[str, Path(pattern=IMPORT_ID)]) -> Response:
    async with services_of(request).pool.connection() as conn:
        found = await imports.progress_async(conn, import_id)
    if found is None:
        return page(request, "missing.html", 404, who=who, what=f"No import {import_id}.")
    return page(request, "import.html", who=who, imp=found,
                refresh=services_of(request).settings.console_refresh)
