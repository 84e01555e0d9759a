"""CSV imports over HTTP: `POST /v1/imports` (scope `write`, multipart) checks every row
and publishes them in one Kafka transaction; `GET /v1/imports/{id}` (scope `read`) says how
many the processor has applied. See `stockflow.usecases.importer`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from confluent_kafka import KafkaException
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from stockflow import StockflowError
from stockflow.adapters.db import imports
from stockflow.adapters.publisher import PublishError
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.models import Problem, problems
from stockflow.entrypoints.api.services import ApiSettings, ImportPublisher, Pool
from stockflow.entrypoints.api.writes import IdempotencyKey, claim_idempotency_key
from stockflow.usecases.importer import IMPORT_ID, MAX_BYTES, Plan, new_import_id, plan

__all__ = ["ImportKind", "router"]

MAX_LISTED = 10_000  # bad rows listed in one answer (all are counted)
_CHUNK = 1024 * 1024

router = APIRouter(prefix="/v1", tags=["imports"], route_class=Authenticated, responses={
    **problems("write"), 400: {"model": Problem, "description": "the form could not be read"}})
ImportId = Annotated[str, Path(pattern=IMPORT_ID)]
# `csv_rows.KINDS`, spelt out for the OpenAPI document (a unit test keeps them equal)
ImportKind = Literal["counts", "receipts", "adjustments", "purchase-orders"]


class BadLine(BaseModel):
    line: int = Field(description="in the file; the header is line 1")
    reason: str


class Checked(BaseModel):
    import_id: str | None = Field(description=(
        "set when rows were published (follow it at `GET /v1/imports/{import_id}`); null "
        "when nothing was"))
    kind: str
    rows: int = Field(description="data rows read")
    valid: int
    bad: int
    bad_rows: list[BadLine] = Field(description=f"the first {MAX_LISTED:,}, by line")


class Imported(Checked):
    published: int = Field(description="rows published (0 on a dry run)")


class Refused(Checked):
    detail: str


class ImportProgress(BaseModel):
    import_id: str
    kind: str
    actor: str
    file_name: str
    rows: int = Field(description="rows published")
    skipped: int = Field(description="bad rows left out (allow_partial)")
    created_at: datetime
    published_at: datetime | None = Field(description="null until Kafka took the rows")
    applied: int
    noop: int = Field(description="applied with nothing to change (e.g. a reference seen "
                                  "before)")
    rejected: int = Field(description="refused on the key's state, e.g. an adjustment below "
                                      "zero (sent to the DLQ)")
    pending: int = Field(description="not processed yet")
    rejections: list[BadLine] = Field(description=f"the first {imports.MAX_LISTED}, by line")


def _checked(found: Plan) -> dict[str, Any]:
    return {"import_id": None, "kind": found.kind, "rows": found.rows,
            "valid": len(found.messages), "bad": len(found.bad),
            "bad_rows": [{"line": b.line, "reason": b.reason} for b in found.bad[:MAX_LISTED]]}


async def _read(upload: UploadFile) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > MAX_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/imports", status_code=202, response_model=Imported, responses={
    200: {"model": Imported, "description": "dry run: checked, nothing published"},
    413: {"model": Problem, "description": "the file is too large"},
    422: {"model": Refused | Problem, "description": (
        "nothing published: bad rows (each listed), no row to publish, a file that is not "
        "CSV text, a bad request, or an Idempotency-Key used before for another request")},
})
async def post_import(
    request: Request, caller: Annotated[Caller, Depends(require("write"))],
    settings: ApiSettings, pool: Pool, sender: ImportPublisher,
    file: Annotated[UploadFile, File(description="CSV with a header row: UTF-8 (or UTF-16 "
                                                 "with a byte-order mark)")],
    kind: Annotated[ImportKind, Form()],
    allow_partial: Annotated[bool, Form(description="publish the valid rows even if some "
                                                    "are bad")] = False,
    dry_run: Annotated[bool, Form(description="check only")] = False,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Check every row of a CSV file of counts, receipts or adjustments, then publish them
    all in one Kafka transaction; if any row is bad, nothing is published (unless
    `allow_partial`) and each bad row is listed with its line and reason. Only an import
    that publishes gets an `import_id` (to follow at `GET /v1/imports/{import_id}`)."""
    data = await _read(file)
    import_id = new_import_id(None if idempotency_key is None
                              else f"{caller.key_id}\n{idempotency_key}")
    try:
        found = await asyncio.to_thread(
            plan, data, kind, import_id=import_id, actor=f"api-key:{caller.name}",
            file_name=(file.filename or "upload.csv")[:200], settings=settings)
    except StockflowError as exc:  # not CSV text
        raise HTTPException(422, f"{exc}; nothing imported") from None
    checked = _checked(found)
    if (refusal := found.refusal(allow_partial)) is not None:
        return JSONResponse(Refused(**checked, detail=refusal).model_dump(mode="json"), 422)
    if dry_run:
        return JSONResponse(Imported(**checked, published=0).model_dump(mode="json"), 200)
    await claim_idempotency_key(pool, request.url.path, caller, idempotency_key,
                                {"kind": kind, "file": found.digest})
    try:
        await sender.send(found)
    except (PublishError, KafkaException) as exc:
        raise HTTPException(503, f"Kafka did not take the rows: {exc}; nothing was "
                                 "published (retry with the same Idempotency-Key)") from None
    except StockflowError as exc:  # its id named another file
        raise HTTPException(422, str(exc)) from None
    return Imported(**{**checked, "import_id": found.import_id},
                    published=len(found.messages))


@router.get("/imports/{import_id}", response_model=ImportProgress,
            responses={404: {"model": Problem, "description": "no such import"}})
async def get_import(import_id: ImportId, pool: Pool,
                     _: Annotated[Caller, Depends(require("read"))]) -> Any:
    """How many of the import's rows the processor has applied, found already applied, or
    rejected so far."""
    async with pool.connection() as conn:
        got = await imports.progress_async(conn, import_id)
    if got is None:
        raise HTTPException(404, f"no import {import_id}")
    return {**got._asdict(), "pending": got.pending,
            "rejections": [{"line": line, "reason": r} for line, r in got.rejections]}
