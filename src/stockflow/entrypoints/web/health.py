"""What the overview tells about the machinery behind the stock: how many input messages
the processors have still to apply (Kafka's ends past the positions Postgres holds) and
the webhook queue's depth. Both cost a broker or a database round trip, so one API
process asks at most every `FRESH_FOR` seconds, however many people watch."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import Request

from stockflow.adapters.db import reads
from stockflow.adapters.db import webhooks as hooks
from stockflow.adapters.kafka import backlog
from stockflow.contract.topics import Topics
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web.sync_db import in_db

__all__ = ["FRESH_FOR", "Machinery", "machinery"]

FRESH_FOR = 5.0


@dataclass(frozen=True)
class Machinery:
    """The processors' backlog (None: Kafka did not answer) and the webhook queue."""

    backlog: int | None
    queue: hooks.QueueDepth
    at: float  # monotonic, when asked


_last: dict[int, Machinery] = {}  # by app: one per API process in practice
_lock = asyncio.Lock()


async def machinery(request: Request) -> Machinery:
    """The figures, asked again when older than `FRESH_FOR` seconds."""
    services = services_of(request)
    async with _lock:
        known = _last.get(id(services))
        if known is not None and time.monotonic() - known.at < FRESH_FOR:
            return known
        settings = services.settings
        async with services.pool.connection() as conn:
            positions = await reads.committed(conn, settings.group_id)
        try:
            behind: int | None = await asyncio.to_thread(
                backlog, settings, Topics(settings.topic_prefix).inputs, positions)
        except Exception:  # noqa: BLE001 - any broker trouble: said as unknown on the page
            behind = None
        queue = await in_db(request, hooks.queue_depth)
        _last[id(services)] = found = Machinery(behind, queue, time.monotonic())
        return found
