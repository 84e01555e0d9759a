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

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stockflow import StockflowError
from stockflow.adapters.db import imports
from stockflow.adapters.db.store import Conn
from stockflow.contract.csv_rows import KINDS, BadRow, read
from stockflow.contract.emit import Message
from stockflow.contract.events import envelope
from stockflow.contract.topics import Topics
from stockflow.publisher import Publisher, PublishError, prepare
from stockflow.settings import Settings

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
        return [_event_id(self.import_id, line) for line in self.lines]

    @property
    def rows(self) -> int:
        return len(self.messages) + len(self.bad)


def plan(data: bytes, kind: str, *, import_id: str, actor: str, file_name: str,
         settings: Settings, progress: Callable[[int], None] | None = None) -> Plan:
    """Check every row of a CSV file of `kind` (counts, receipts or adjustments).
    `progress` hears how many more rows were checked, every few thousand."""
    spec = KINDS.get(kind)
    if spec is None:
        raise StockflowError(f"kind: one of {', '.join(KINDS)}; got {kind!r}")
    if len(data) > MAX_BYTES:
        raise StockflowError(f"the file is {len(data):,} bytes; at most {MAX_BYTES:,}")
    found = Plan(import_id, kind, actor, file_name, hashlib.sha256(data).hexdigest())
    text = data.decode("utf-8-sig", "surrogateescape")
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
        doc = envelope(spec.type, {spec.reference: ident, **row.data}, id_=ident, time=now,
                       source=actor)
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


def publish(conn: Conn, publisher: Publisher, found: Plan, *,
            progress: Callable[[int], None] | None = None) -> None:
    """Record the import, then publish its messages in one Kafka transaction."""
    imports.record(conn, imports.Recorded(
        found.import_id, found.kind, found.actor, found.file_name, found.digest, found.lines,
        len(found.bad)))
    publisher.transact(found.messages, timeout=120.0, progress=progress)
    imports.published(conn, found.import_id)
