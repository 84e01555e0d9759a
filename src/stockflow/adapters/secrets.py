"""Webhook secrets at rest: AES-256-GCM under the key in `STOCKFLOW_SECRET_KEY`.

The setting is base64 (standard or URL-safe) of exactly 32 random bytes. Make one with

    openssl rand -base64 32

or `python -c "from stockflow.adapters.secrets import generate_key; print(generate_key())"`.
Losing it makes every stored secret unreadable; like any secret it is never logged.

A sealed value is `version (1 byte) | nonce (12 random bytes) | ciphertext and tag`.
The caller's associated data (the endpoint's id) and the version byte are authenticated
with it, so a value cannot be moved to another row or read under another format.
"""

from __future__ import annotations

import base64
import binascii
from secrets import token_bytes

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stockflow import StockflowError

__all__ = ["SecretBox", "SecretError", "generate_key"]

_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_V1 = b"\x01"
_URLSAFE = str.maketrans("-_", "+/")  # either alphabet decodes as the standard one
_HOW = "STOCKFLOW_SECRET_KEY is base64 of exactly 32 bytes (make one: openssl rand -base64 32)"


class SecretError(StockflowError):
    """A key setting or a sealed value that cannot be used; the message never holds either."""


def generate_key() -> str:
    """A fresh value for `STOCKFLOW_SECRET_KEY`: standard base64 of 32 random bytes."""
    return base64.b64encode(token_bytes(_KEY_BYTES)).decode()


def _decode_key(value: str) -> bytes:
    text = value.strip().translate(_URLSAFE)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{_HOW}; it is not base64") from None
    if len(key) != _KEY_BYTES:
        raise SecretError(f"{_HOW}; it decodes to {len(key)} bytes")
    return key


class SecretBox:
    """Seals and opens webhook secrets with one AES-256-GCM key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise SecretError(f"a SecretBox key is {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """The box for the `STOCKFLOW_SECRET_KEY` setting's value."""
        return cls(_decode_key(value))

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, aad: bytes) -> bytes:
        """`plaintext` encrypted under a fresh nonce, bound to `aad` (the row's id)."""
        nonce = token_bytes(_NONCE_BYTES)
        return _V1 + nonce + self._aead.encrypt(nonce, plaintext.encode(), _V1 + aad)

    def open(self, blob: bytes, aad: bytes) -> str:
        """The plaintext `seal` was given with the same `aad`; SecretError otherwise."""
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SecretError("a sealed secret is too short: truncated or not sealed")
        version, nonce, sealed = blob[:1], blob[1:1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES:]
        if version != _V1:
            raise SecretError(f"a sealed secret has unknown format version {blob[0]}")
        try:
            plain = self._aead.decrypt(nonce, sealed, version + aad)
        except InvalidTag:
            raise SecretError(
                "a sealed secret does not open: another STOCKFLOW_SECRET_KEY sealed it, it was "
                "altered, or it belongs to another row") from None
        return plain.decode()
