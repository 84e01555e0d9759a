"""The expiry sweeper's query: pending reservations past their expiry become
`reservation.expired` events on the orders topic, which the processor then applies like
any other input (so expiry is serialized with the key's other events)."""

from __future__ import annotations

import json
from datetime import datetime

from stockflow.db.store import Conn
from stockflow.emit import SOURCE, output_id
from stockflow.events import TopicKind
from stockflow.outbox import Message
from stockflow.publisher import envelope
from stockflow.topics import Topics

__all__ = ["due_expiries"]


def due_expiries(conn: Conn, partitions: list[int], now: datetime, topics: Topics,
                 limit: int) -> list[tuple[str, Message]]:
    """(event id, message) for each due reservation in `partitions`. The id is derived from
    the line and its expiry, so a sweep repeated before the first is applied is a duplicate."""
    rows = conn.execute(
        "SELECT key, order_id, line_id, expires_at FROM reservations"
        " WHERE status = 'pending' AND partition = ANY(%s) AND expires_at <= %s"
        " ORDER BY expires_at LIMIT %s", (partitions, now, limit)).fetchall()
    found = []
    for key, order_id, line_id, expires_at in rows:
        sku, _, warehouse = key.partition("@")
        ident = output_id(f"{key}\x1f{order_id}\x1f{line_id}", "reservation.expired",
                          expires_at.isoformat())
        doc = envelope("reservation.expired", {"order_id": order_id, "line_id": line_id,
                                               "sku": sku, "warehouse": warehouse},
                       id_=ident, time=now, source=f"{SOURCE}/sweeper") | {"subject": key}
        value = json.dumps(doc, separators=(",", ":")).encode()
        found.append((ident, Message(topics.name(TopicKind.ORDERS), key.encode(), value)))
    return found
