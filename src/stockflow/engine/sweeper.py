"""The expiry sweeper: pending reservations past their expiry become `reservation.expired`
events on the orders topic, which the processor then applies like any other input (so
expiry is serialized with the key's other events)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from stockflow.adapters.db import queries
from stockflow.adapters.db.store import Conn
from stockflow.contract.emit import SOURCE, Message, output_id
from stockflow.contract.events import envelope
from stockflow.contract.topics import TopicKind, Topics

__all__ = ["Sweeper"]

BATCH = 5000  # expiries written per sweep at most


def _due_expiries(conn: Conn, partitions: list[int], now: datetime, topics: Topics,
                 limit: int) -> list[tuple[str, Message]]:
    """(event id, message) for each due reservation in `partitions`. The id is derived from
    the line and its expiry, so a sweep repeated before the first is applied is a duplicate."""
    found = []
    for key, order_id, line_id, expires_at in queries.due_reservations(conn, partitions, now,
                                                                       limit):
        sku, _, warehouse = key.partition("@")
        ident = output_id(f"{key}\x1f{order_id}\x1f{line_id}", "reservation.expired",
                          expires_at.isoformat())
        doc = envelope("reservation.expired", {"order_id": order_id, "line_id": line_id,
                                               "sku": sku, "warehouse": warehouse},
                       id_=ident, time=now, source=f"{SOURCE}/sweeper") | {"subject": key}
        value = json.dumps(doc, separators=(",", ":")).encode()
        found.append((ident, Message(topics.name(TopicKind.ORDERS), key.encode(), value)))
    return found


class Sweeper:
    """Remembers what it wrote, so a line is not written again while its expiry is on its
    way; a line still due after that is written again after a back-off that doubles each
    time (1 minute, 2, 4 ... at most an hour), so a line that can never expire costs one
    message an hour, not one per sweep."""

    def __init__(self, topics: Topics, first_retry: float = 60.0, last_retry: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.topics = topics
        self.first_retry, self.last_retry = first_retry, last_retry
        self.clock = clock
        self.written: dict[str, tuple[float, float]] = {}  # id -> (when, wait before again)

    def due(self, conn: Conn, partitions: list[int], now: datetime) -> list[Message]:
        """The expiries to write now."""
        found = _due_expiries(conn, partitions, now, self.topics, limit=BATCH)
        wall = self.clock()
        still = {ident for ident, _ in found}
        # forget lines no longer due: their expiry was applied (or they changed)
        self.written = {i: w for i, w in self.written.items() if i in still}
        fresh = []
        for ident, message in found:
            when, wait = self.written.get(ident, (-1.0, 0.0))
            if when >= 0 and wall - when < wait:
                continue
            again = self.first_retry if when < 0 else min(wait * 2, self.last_retry)
            self.written[ident] = (wall, again)
            fresh.append(message)
        return fresh
