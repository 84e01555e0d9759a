"""The HTTP API's keys in Postgres (see migration 0005): only token hashes are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["ApiKey", "add", "find", "keys", "revoke"]

_COLUMNS = "id, name, token_hash, scopes, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """One stored API key: its id, name, token hash, scopes, and when it was created and
    revoked."""

    id: str
    name: str
    token_hash: bytes
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> ApiKey:
        """The key of one row, read in `_COLUMNS` order."""
        key_id, name, digest, scopes, created, revoked = row
        return cls(key_id, name, bytes(digest), frozenset(scopes), created, revoked)


def add(conn: Conn, *, key_id: str, name: str, digest: bytes, scopes: list[str]) -> None:
    """Store a new key: its id, name, the hash of its token and its scopes."""
    conn.execute("INSERT INTO api_keys (id, name, token_hash, scopes) VALUES (%s, %s, %s, %s)",
                 (key_id, name, digest, scopes))


def keys(conn: Conn) -> list[ApiKey]:
    """Every key, revoked ones too, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
    return [ApiKey.of(r) for r in rows]


def revoke(conn: Conn, key_id: str) -> bool:
    """Revoke the key `key_id`; False when no active key has that id."""
    cur = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s"
                       " AND revoked_at IS NULL", (key_id,))
    return cur.rowcount == 1


async def find(conn: AsyncConn, key_id: str) -> ApiKey | None:
    """The key with this id (revoked or not), for the API's authentication."""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
    row = await cur.fetchone()
    return ApiKey.of(row) if row else None
