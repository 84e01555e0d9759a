"""Console sessions in Postgres (migration 0019): only a hash of each session's token."""

from __future__ import annotations

from stockflow.adapters.db.store import AsyncConn

__all__ = ["end", "start", "touch"]


async def start(conn: AsyncConn, token_hash: bytes, key_id: str, lifetime: float) -> None:
    """A new session for the key; sessions past `lifetime` seconds are cleared meanwhile,
    so the table holds no more than a lifetime's sign-ins."""
    await conn.execute("DELETE FROM console_sessions"
                       " WHERE created_at < now() - make_interval(secs => %s)", (lifetime,))
    await conn.execute("INSERT INTO console_sessions (token_hash, key_id) VALUES (%s, %s)",
                       (token_hash, key_id))


async def touch(conn: AsyncConn, token_hash: bytes, *, idle: float,
                lifetime: float) -> str | None:
    """The key id of a live session, marked used now; None when there is none, it was
    unused for `idle` seconds, or it is older than `lifetime` seconds."""
    cur = await conn.execute(
        "UPDATE console_sessions SET seen_at = now() WHERE token_hash = %s"
        " AND seen_at >= now() - make_interval(secs => %s)"
        " AND created_at >= now() - make_interval(secs => %s) RETURNING key_id",
        (token_hash, idle, lifetime))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def end(conn: AsyncConn, token_hash: bytes) -> None:
    """Sign-out: the session is gone, whoever holds its cookie."""
    await conn.execute("DELETE FROM console_sessions WHERE token_hash = %s", (token_hash,))
