"""CSV imports: every row checked first, then all of them published in one Kafka
transaction, for the CLI (`stockflow import`) and the HTTP API (`POST /v1/imports`).

- Each row becomes one event of its kind (`stockflow.contract.csv_rows`), validated exactly
  as the processor will parse it. A bad row is reported with its line and reason; unless
  partial imports are allowed, one bad row means nothing is published.
- An import has an id; each row's event id is it and the row's line (`imp_…:17`, which a
  DLQ entry then names), so running an import again under its id is a counted duplicate,
  never a second movement.
- The import is recorded in Postgres before it is published, so its progress (rows applied
  by the processor) can be asked for by id.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stockflow import StockflowError
from stockflow.adapters.db import idempotency, imports
from stockflow.adapters.db.store import Conn
from stockflow.adapters.publisher import Publisher, PublishError, prepare
from stockflow.adapters.settings import Settings
from stockflow.adapters.workbooks import is_workbook, sheet_as_csv
from stockflow.contract.csv_rows import KINDS, BadRow, read
from stockflow.contract.emit import Message
from stockflow.contract.events import envelope
from stockflow.contract.topics import Topics

__all__ = ["IMPORT_ID", "MAX_BYTES", "Plan", "new_import_id", "plan", "publish"]

IMPORT_ID = r"^imp_[0-9a-f]{20}$"

MAX_BYTES = 256 * 1024 * 1024  # of one file; a row is about 50 bytes
_NAMESPACE = uuid.UUID("2d7c61a4-93b5-4f0e-8a1e-5c3f6d9b0e27")  # of derived import ids
_STEP = 5000  # rows between progress reports


def new_import_id(seed: str | None = None) -> str:
    """A fresh import id, or the one `seed` always gives (a name on the command line, an
    API key and its Idempotency-Key over HTTP)."""
    hexed = uuid.uuid4().hex if seed is None else uuid.uuid5(_NAMESPACE, seed).hex
    return f"imp_{hexed[:20]}"


def _event_id(import_id: str, line: int) -> str:
    return f"{import_id}:{line}"  # adapters/db/imports.py derives them the same way


@dataclass
class Plan:
    """A checked file: the messages to publish, and the rows that cannot be."""

    import_id: str
    kind: str
    actor: str
    file_name: str
    digest: str
    messages: list[Message] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the file line of each message
    bad: list[BadRow] = field(default_factory=list)

    @property
    def event_ids(self) -> list[str]:
        """The ids of the events the rows become, one per good row."""
        return [_event_id(self.import_id, line) for line in self.lines]

    @property
    def rows(self) -> int:
        """Data rows read, good and bad."""
        return len(self.messages) + len(self.bad)

    def refusal(self, allow_partial: bool) -> str | None:
        """Why nothing of this file is to be published, or None."""
        if self.bad and not allow_partial:
            return f"nothing imported: {len(self.bad):,} bad rows"
        if not self.rows:
            return "nothing imported: the file has no data rows"
        if not self.messages:
            return f"nothing imported: all {len(self.bad):,} rows are bad"
        return None


def plan(data: bytes, kind: str, *, import_id: str, actor: str, file_name: str,
         settings: Settings, progress: Callable[[int], None] | None = None) -> Plan:
    """Check every row of a CSV file of `kind` (`csv_rows.KINDS`).
    `progress` hears how many more rows were checked, every few thousand."""
    spec = KINDS.get(kind)
    if spec is None:
        raise StockflowError(f"kind: one of {', '.join(KINDS)}; got {kind!r}")
    if len(data) > MAX_BYTES:
        raise StockflowError(f"the file is {len(data):,} bytes; at most {MAX_BYTES:,}")
    found = Plan(import_id, kind, actor, file_name, hashlib.sha256(data).hexdigest())
    text = _text(data)
    topics, limits = Topics(settings.topic_prefix), settings.limits()
    now = datetime.now(UTC)  # the rows' event time, unless a row gives its own
    checked = 0
    for row in read(io.StringIO(text, newline=""), spec, limits):
        checked += 1
        if progress is not None and checked % _STEP == 0:
            progress(_STEP)
        if isinstance(row, BadRow):
            found.bad.append(row)
            continue
        ident = _event_id(import_id, row.line)
        made = {spec.reference: ident} if spec.reference else {}
        doc = envelope(spec.type, {**made, **row.data}, id_=ident, time=now, source=actor)
        if row.time is not None:
            doc["time"] = row.time
        try:
            found.messages.append(prepare(doc, topics, limits))
        except PublishError as exc:
            found.bad.append(BadRow(row.line, str(exc)))
            continue
        found.lines.append(row.line)
    if progress is not None:
        progress(checked % _STEP)
    found.bad.sort()
    return found


# What a file that is not CSV text usually is, by its first bytes, and what to do instead.
_NOT_TEXT = ((b"\x1f\x8b", "gzip-compressed: upload the CSV file itself"),
             (b"PK\x03\x04", "a ZIP archive, not an .xlsx workbook: upload the CSV file "
                             "itself"),
             (b"%PDF", "a PDF document: export the data as CSV UTF-8"))


def _text(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), or UTF-16 with one (what
    spreadsheets call "Unicode text"), or an Excel workbook's first sheet as CSV
    (`adapters.workbooks`). Bytes that are not UTF-8 arrive as surrogate escapes, which
    make their row bad (`csv_rows`); a file that is no text at all is a StockflowError
    saying what it is."""
    if is_workbook(data):
        return sheet_as_csv(data)
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise StockflowError(f"the file is not CSV text: it is {what}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise StockflowError("the file starts like UTF-16 text but is not") from None
    if b"\x00" in data:  # valid UTF-8, but no CSV text holds it
        raise StockflowError("the file holds NUL bytes: it is binary, or UTF-16 without a "
                             "byte-order mark; save it as CSV UTF-8")
    return data.decode("utf-8-sig", "surrogateescape")


def publish(conn: Conn, publisher: Publisher, found: Plan, *,
            progress: Callable[[int], None] | None = None) -> None:
    """Record the import, then publish its messages in one Kafka transaction; a
    StockflowError if its id named another file (or kind) before."""
    try:
        idempotency.claim(conn, found.import_id, idempotency.fingerprint(found.kind,
                                                                         found.digest))
    except idempotency.KeyReused:
        raise StockflowError(f"import id {found.import_id} was used for another file: "
                             "choose a new id") from None
    imports.record(conn, imports.Recorded(
        found.import_id, found.kind, found.actor, found.file_name, found.digest, found.lines,
        len(found.bad)))
    publisher.transact(found.messages, timeout=120.0, progress=progress)
    imports.published(conn, found.import_id)
