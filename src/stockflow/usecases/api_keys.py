"""API keys as an administrator makes them: one per person or system, its name recorded as
the actor of what it does, its token shown once and only its hash kept."""

from __future__ import annotations

from stockflow import StockflowError
from stockflow.adapters.db import api_keys, store
from stockflow.contract.api_keys import SCOPES, KeyToken, new_token, token_hash

__all__ = ["create_key"]


def create_key(conn: store.Conn, name: str, scopes: list[str]) -> KeyToken:
    """A new key named `name` with `scopes` (StockflowError for a name of no or over 100
    characters, or scopes that are not `SCOPES`); its token is in the answer only."""
    if not 1 <= len(name) <= 100:
        raise StockflowError("name: 1 to 100 characters")
    if not scopes or set(scopes) - set(SCOPES):
        raise StockflowError(f"scopes: a choice of {', '.join(SCOPES)}")
    made = new_token()
    api_keys.add(conn, key_id=made.id, name=name, digest=token_hash(made.token),
                 scopes=sorted(set(scopes)))
    return made
