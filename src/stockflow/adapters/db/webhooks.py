"""The webhook relay's Postgres side: endpoints, matched output events and the delivery
queue (see migration 0004). Every function runs in the caller's connection; the relay calls
them from a worker thread, batch by batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from stockflow.adapters.db.store import Conn

__all__ = [
    "Claimed",
    "Delivery",
    "Endpoint",
    "OutEvent",
    "Outcome",
    "QueueDepth",
    "add_endpoint",
    "claim",
    "deliveries",
    "endpoint",
    "endpoints",
    "enqueue",
    "events_between",
    "queue_depth",
    "record",
    "replay",
    "rotate",
    "set_state",
]

_ENDPOINT_COLUMNS = ("id, url, description, event_patterns, key_patterns, state, "
                     "disabled_reason, failing_since, created_at, secret, previous_secret, "
                     "previous_until")


@dataclass(frozen=True)
class Endpoint:
    """A registered webhook endpoint: what it wants, its state and its sealed secrets."""

    id: str
    url: str
    description: str
    event_patterns: tuple[str, ...]
    key_patterns: tuple[str, ...]
    state: str  # enabled | disabled
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: bytes  # sealed
    previous_secret: bytes | None  # sealed; signs alongside until previous_until
    previous_until: datetime | None

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Endpoint:
        """The endpoint of one row, read in `_ENDPOINT_COLUMNS` order."""
        (id_, url, desc, events, keys, state, reason, failing, created, secret, prev,
         until) = row
        return cls(id_, url, desc, tuple(events), tuple(keys), state, reason, failing, created,
                   bytes(secret), bytes(prev) if prev is not None else None, until)


@dataclass(frozen=True)
class OutEvent:
    """An output event as read from its topic."""

    event_id: str
    type: str
    subject: str
    time: datetime
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this relay for one attempt."""

    endpoint_id: str
    event_id: str
    attempts: int  # made before this one
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt."""

    endpoint_id: str
    event_id: str
    status: str  # pending (retry at next_at) | delivered | exhausted
    next_at: datetime | None
    answered: int | None  # the HTTP status, if any
    error: str | None
    at: datetime
    ok: bool  # the endpoint answered 2xx
    disable: str | None = None  # a reason to disable the endpoint now


class QueueDepth(NamedTuple):
    """The delivery queue as operators watch it. `pending` and `oldest_due` count only
    what an enabled endpoint will attempt; a disabled endpoint's deliveries are `held`:
    nothing is late while its owner fixes the receiver."""

    pending: int  # waiting for an attempt, due now or later
    oldest_due: float  # seconds the longest-waiting due one has been due (0 if none)
    held: int  # pending, of disabled endpoints


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to an endpoint: its status, attempts and when it is next due."""

    event_id: str
    type: str
    subject: str
    time: datetime
    status: str
    attempts: int
    next_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None


def add_endpoint(conn: Conn, *, endpoint_id: str, url: str, events: list[str], keys: list[str],
                 description: str, sealed: bytes) -> None:
    """Register an endpoint, its secret sealed by the caller."""
    conn.execute("INSERT INTO webhook_endpoints (id, url, description, event_patterns,"
                 " key_patterns, secret) VALUES (%s, %s, %s, %s, %s, %s)",
                 (endpoint_id, url, description, events, keys, sealed))


def endpoints(conn: Conn) -> list[Endpoint]:
    """Every registered endpoint, oldest first."""
    rows = conn.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at,"
                        " id").fetchall()
    return [Endpoint.of(r) for r in rows]


def endpoint(conn: Conn, endpoint_id: str) -> Endpoint | None:
    """The endpoint `endpoint_id`, or None when there is none."""
    row = conn.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s",
                       (endpoint_id,)).fetchone()
    return Endpoint.of(row) if row else None


def rotate(conn: Conn, endpoint_id: str, sealed: bytes, grace: timedelta) -> bool:
    """A new secret; the current one keeps signing alongside it for `grace`."""
    cur = conn.execute("UPDATE webhook_endpoints SET previous_secret = secret,"
                       " previous_until = now() + %s, secret = %s, updated_at = now()"
                       " WHERE id = %s", (grace, sealed, endpoint_id))
    return cur.rowcount == 1


def set_state(conn: Conn, endpoint_id: str, *, enabled: bool, reason: str | None = None) -> bool:
    """Enable (which restarts the failure clock) or disable an endpoint."""
    cur = conn.execute(
        "UPDATE webhook_endpoints SET state = %s, disabled_reason = %s, updated_at = now(),"
        " failing_since = CASE WHEN %s THEN NULL ELSE failing_since END WHERE id = %s",
        ("enabled" if enabled else "disabled", None if enabled else reason, enabled,
         endpoint_id))
    return cur.rowcount == 1


def enqueue(conn: Conn, events: list[OutEvent], pairs: list[tuple[str, str]]) -> int:
    """Store matched events and queue one delivery per (endpoint id, event id) pair; what
    is already there is left alone. Returns how many deliveries are new."""
    if events:
        conn.execute(
            "INSERT INTO webhook_events (event_id, type, subject, time, body)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
            " %s::bytea[]) ON CONFLICT (event_id) DO NOTHING",
            ([e.event_id for e in events], [e.type for e in events],
             [e.subject for e in events], [e.time for e in events], [e.body for e in events]))
    if not pairs:
        return 0
    cur = conn.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id)"
        " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
        ([e for e, _ in pairs], [i for _, i in pairs]))
    return cur.rowcount


def claim(conn: Conn, free: dict[str, int], lease: timedelta) -> list[Claimed]:
    """Lease up to `free[endpoint]` due deliveries of each enabled endpoint, oldest due
    first. Each endpoint is served from its own slots, so one with a backlog or a slow
    receiver never takes another's turn."""
    if not free:
        return []
    rows = conn.execute(
        "WITH picked AS (SELECT d.endpoint_id, d.event_id FROM unnest(%s::text[], %s::int[])"
        "   AS f(endpoint_id, n) JOIN webhook_endpoints e ON e.id = f.endpoint_id"
        "   AND e.state = 'enabled', LATERAL (SELECT endpoint_id, event_id"
        "   FROM webhook_deliveries WHERE endpoint_id = f.endpoint_id AND status = 'pending'"
        "   AND next_at <= now() AND (leased_until IS NULL OR leased_until < now())"
        "   ORDER BY next_at LIMIT f.n FOR UPDATE SKIP LOCKED) d)"
        " UPDATE webhook_deliveries w SET leased_until = now() + %s FROM picked p, webhook_events v"
        " WHERE w.endpoint_id = p.endpoint_id AND w.event_id = p.event_id"
        " AND v.event_id = w.event_id RETURNING w.endpoint_id, w.event_id, w.attempts, v.body",
        (list(free), list(free.values()), lease)).fetchall()
    return [Claimed(e, i, n, bytes(b)) for e, i, n, b in rows]


def record(conn: Conn, outcomes: list[Outcome]) -> list[str]:
    """Write what became of attempts, and of their endpoints: a success restarts the
    failure clock, a failure starts it, and an endpoint may be disabled. Returns the ids
    of the endpoints this disabled (that were enabled until now)."""
    if not outcomes:
        return []
    o = outcomes
    conn.execute(
        "UPDATE webhook_deliveries d SET status = r.status, next_at = coalesce(r.next_at,"
        " d.next_at), attempts = d.attempts + 1, leased_until = NULL, last_status = r.code,"
        " last_error = r.error, last_attempt_at = r.at, delivered_at = CASE WHEN r.status ="
        " 'delivered' THEN r.at END FROM unnest(%s::text[], %s::text[], %s::text[],"
        " %s::timestamptz[], %s::int[], %s::text[], %s::timestamptz[])"
        " AS r(endpoint_id, event_id, status, next_at, code, error, at)"
        " WHERE d.endpoint_id = r.endpoint_id AND d.event_id = r.event_id",
        ([x.endpoint_id for x in o], [x.event_id for x in o], [x.status for x in o],
         [x.next_at for x in o], [x.answered for x in o], [x.error for x in o],
         [x.at for x in o]))
    ok = sorted({x.endpoint_id for x in o if x.ok})
    failing: dict[str, datetime] = {}
    for x in o:
        if not x.ok:
            failing[x.endpoint_id] = min(x.at, failing.get(x.endpoint_id, x.at))
    if ok:
        conn.execute("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ANY(%s)"
                     " AND failing_since IS NOT NULL", (ok,))
    if failing:
        conn.execute(
            "UPDATE webhook_endpoints e SET failing_since = f.at FROM unnest(%s::text[],"
            " %s::timestamptz[]) AS f(id, at) WHERE e.id = f.id AND e.failing_since IS NULL",
            (list(failing), list(failing.values())))
    disable = {x.endpoint_id: x.disable for x in o if x.disable}
    if not disable:
        return []
    rows = conn.execute(
        "UPDATE webhook_endpoints e SET state = 'disabled', disabled_reason = d.reason,"
        " updated_at = now() FROM unnest(%s::text[], %s::text[]) AS d(id, reason)"
        " WHERE e.id = d.id AND e.state = 'enabled' RETURNING e.id",
        (list(disable), list(disable.values()))).fetchall()
    return [r[0] for r in rows]


def deliveries(conn: Conn, endpoint_id: str, *, failed_only: bool = False,
               limit: int = 100) -> list[Delivery]:
    """The endpoint's deliveries, newest first; `failed_only`: the exhausted ones and the
    pending ones whose last attempt failed."""
    failed = " AND (d.status = 'exhausted' OR (d.status = 'pending' AND d.attempts > 0))"
    rows = conn.execute(
        "SELECT d.event_id, v.type, v.subject, v.time, d.status, d.attempts,"
        " CASE WHEN d.status = 'pending' THEN d.next_at END, d.last_status, d.last_error,"
        " d.last_attempt_at, d.delivered_at FROM webhook_deliveries d"
        " JOIN webhook_events v USING (event_id) WHERE d.endpoint_id = %s"
        + (failed if failed_only else "") + " ORDER BY d.created_at DESC, d.event_id LIMIT %s",
        (endpoint_id, limit)).fetchall()
    return [Delivery(*r) for r in rows]


def events_between(conn: Conn, since: datetime, until: datetime | None) -> Iterable[
        tuple[str, str, str]]:
    """(event id, type, subject) of stored events with `since <= time < until`."""
    return conn.execute(
        "SELECT event_id, type, subject FROM webhook_events WHERE time >= %s"
        " AND (%s::timestamptz IS NULL OR time < %s) ORDER BY time, event_id",
        (since, until, until)).fetchall()


def replay(conn: Conn, endpoint_id: str, event_ids: list[str]) -> int:
    """Deliver these events to the endpoint again, from the first attempt (same ids)."""
    if not event_ids:
        return 0
    cur = conn.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id)"
        " SELECT %s, * FROM unnest(%s::text[]) ON CONFLICT (endpoint_id, event_id) DO UPDATE"
        " SET status = 'pending', attempts = 0, next_at = now(), leased_until = NULL,"
        " last_error = NULL, last_status = NULL, delivered_at = NULL",
        (endpoint_id, event_ids))
    return cur.rowcount


def queue_depth(conn: Conn) -> QueueDepth:
    """The queue's depth (see QueueDepth), from one scan of the pending deliveries."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE e.state = 'enabled'),"
        " coalesce(extract(epoch FROM now() - min(d.next_at)"
        " FILTER (WHERE e.state = 'enabled' AND d.next_at <= now())), 0),"
        " count(*) FILTER (WHERE e.state <> 'enabled')"
        " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " WHERE d.status = 'pending'").fetchone()
    return QueueDepth(int(row[0]), float(row[1]), int(row[2])) if row else QueueDepth(0, 0.0, 0)
