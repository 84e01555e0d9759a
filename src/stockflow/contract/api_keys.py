"""API tokens: `sfk_<id>_<secret>`. The id finds the key's row; the secret (32 random
bytes) is checked against the SHA-256 of the whole token kept there. A token carries its
full entropy, so a fast hash is enough: nothing shorter could be guessed from it."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

__all__ = ["SCOPES", "KeyToken", "new_token", "parse", "token_hash", "token_matches"]

SCOPES = ("read", "write", "admin")
_TOKEN = re.compile(r"sfk_([a-z0-9]{16})_[A-Za-z0-9_-]{43}")


class KeyToken(NamedTuple):
    """A freshly made token: `id` is public, `token` is shown once."""

    id: str
    token: str


def new_token() -> KeyToken:
    """A new key's id and token; only the token's hash is stored."""
    key_id = secrets.token_hex(8)
    return KeyToken(key_id, f"sfk_{key_id}_{secrets.token_urlsafe(32)}")


def parse(token: str) -> str | None:
    """The key id a token names, or None when it is not shaped like one."""
    m = _TOKEN.fullmatch(token)
    return m[1] if m else None


def token_hash(token: str) -> bytes:
    """The SHA-256 of `token`, as stored and compared."""
    return hashlib.sha256(token.encode()).digest()


def token_matches(token: str, stored: bytes) -> bool:
    """Constant-time: how much of a guess matched never shows in the time taken."""
    return hmac.compare_digest(token_hash(token), stored)
