"""Idempotency keys in Postgres (see migration 0012): one mechanism for every request its
sender may repeat under a key of its choosing, HTTP writes and CSV imports alike.

The first request under a key claims it with its fingerprint. The same key again with
the same fingerprint is a retry (the caller then repeats its deterministic work, which the
processor counts as duplicates); with another fingerprint it is `KeyReused`: the new
request must not be answered with the first one's outcome while its own work is dropped.
"""

from __future__ import annotations

import hashlib

from stockflow import StockflowError
from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["KeyReused", "claim", "claim_async", "fingerprint"]

# One statement whether the key is new or not: a conflict returns the first claim's row
# (under concurrent first claims too, which a separate SELECT would race).
_CLAIM = ("INSERT INTO idempotency_keys (key, fingerprint) VALUES (%s, %s)"
          " ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING fingerprint")


class KeyReused(StockflowError):  # noqa: N818 - a verdict, as callers read it
    """The key was claimed before by a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} was used before for a different request")
        self.key = key


def fingerprint(*lines: str) -> str:
    """The SHA-256 (hex) of `lines`, each a single line (compact JSON is one): joined by
    newlines, as migration 0012 computes it for the imports recorded before it."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _checked(key: str, wanted: str, row: tuple[object, ...] | None) -> None:
    if row is None or row[0] != wanted:
        raise KeyReused(key)


def claim(conn: Conn, key: str, fingerprint_: str) -> None:
    """Claim `key` for the request with this fingerprint, or raise KeyReused."""
    _checked(key, fingerprint_, conn.execute(_CLAIM, (key, fingerprint_)).fetchone())


async def claim_async(conn: AsyncConn, key: str, fingerprint_: str) -> None:
    """`claim` on the HTTP API's asynchronous connection."""
    cur = await conn.execute(_CLAIM, (key, fingerprint_))
    _checked(key, fingerprint_, await cur.fetchone())
