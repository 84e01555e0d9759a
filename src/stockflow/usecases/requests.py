"""A caller's write request as input events: the envelopes the HTTP API publishes for it.

Each event's `source` is `api-key:<the key's name>`, whoever the body says did it. With an
Idempotency-Key, the event ids (and the movement references made from them) derive from
the key's id and that value, so a retried request carries the same ids and the processor
counts it as a duplicate instead of moving stock twice; without one they are random."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from stockflow.adapters.db import idempotency
from stockflow.contract.events import envelope

__all__ = ["Requester", "claim", "completed", "events_of"]

_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4c8e-9d61-2b7f0c1e5a90")  # of idempotent event ids


@dataclass(frozen=True)
class Requester:
    """Whose request it is (an API key's id and name) and its Idempotency-Key, if any."""

    key_id: str
    name: str
    idempotency_key: str | None

    @property
    def source(self) -> str:
        """The events' `source`: who did it."""
        return f"api-key:{self.name}"

    def ids(self, n: int) -> list[str]:
        """The request's `n` event ids: derived from the Idempotency-Key, else random."""
        if self.idempotency_key is None:
            return [str(uuid.uuid4()) for _ in range(n)]
        return [str(uuid.uuid5(_NAMESPACE, f"{self.key_id}\n{self.idempotency_key}\n{i}"))
                for i in range(n)]


def events_of(requester: Requester, events: list[tuple[str, dict[str, Any]]],
              ) -> list[dict[str, Any]]:
    """Envelopes of (type, data) pairs; None values left out, datetimes as ISO text."""
    return [envelope(type_, {k: v.isoformat() if isinstance(v, datetime) else v
                             for k, v in data.items() if v is not None},
                     id_=ident, source=requester.source)
            for ident, (type_, data) in zip(requester.ids(len(events)), events, strict=True)]


def completed(requester: Requester, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole events as a caller sent them (`POST /v1/events`), completed: an id where none
    is given, `time` now where none is, and the caller as `source` whatever they say."""
    now = datetime.now(UTC).isoformat()
    return [{"specversion": "1.0", "time": now, **ev, "id": ev.get("id") or ident,
             "source": requester.source}
            for ev, ident in zip(events, requester.ids(len(events)), strict=True)]


async def claim(pool: AsyncConnectionPool, path: str, requester: Requester, asked: Any) -> None:
    """Claim the requester's Idempotency-Key for this request to `path` (`asked`: what it
    asks for, as JSON values); `idempotency.KeyReused` when the key came with a different
    request before. Without a key, nothing to claim."""
    if requester.idempotency_key is None:
        return
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
    async with pool.connection() as conn:
        await idempotency.claim_async(conn, f"api:{requester.key_id}:{requester.idempotency_key}",
                                      idempotency.fingerprint(path, canonical))
