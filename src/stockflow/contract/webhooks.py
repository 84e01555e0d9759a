"""The webhook wire format: Standard Webhooks (https://www.standardwebhooks.com/) signatures.

A delivery's body is the output CloudEvent, byte for byte as on its Kafka topic. The three
`webhook-*` headers authenticate it:

- `webhook-id`: the event's id, the same on every attempt (receivers de-duplicate by it);
- `webhook-timestamp`: the attempt's time in unix seconds, so each attempt is signed anew;
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.".encode() +
  body)), one per secret, space-separated while a secret is being rotated.

A secret is `whsec_` + base64 of 24 to 64 random bytes; the HMAC key is those bytes.
Pure: no clock and no I/O, so time comes in as an argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from secrets import token_bytes

from stockflow import StockflowError

__all__ = [
    "CONTENT_TYPE",
    "SECRET_PREFIX",
    "TOLERANCE",
    "BadSecret",
    "BadSignature",
    "headers",
    "new_secret",
    "signature",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
# The body is a whole CloudEvent: the CloudEvents HTTP binding's structured content mode.
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TOLERANCE = 300  # seconds a timestamp may lie from the receiver's clock, either way
_KEY_BYTES = range(24, 65)
_MAX_TIMESTAMP_DIGITS = 12


class BadSecret(StockflowError):  # noqa: N818 - a verdict, like ssrf.UrlRefused
    """A secret that is not `whsec_` + base64 of 24 to 64 bytes (never echoed)."""


class BadSignature(StockflowError):  # noqa: N818 - a verdict, like ssrf.UrlRefused
    """A delivery that does not verify; the message says why."""


def new_secret() -> str:
    """A fresh secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) not in _KEY_BYTES:
        raise BadSecret(f"a webhook secret's key is 24 to 64 bytes, not {len(key)}")
    return key


def _sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64>` per secret, in order, space-separated."""
    if not secrets:
        raise ValueError("a delivery is signed with at least one secret")
    if not msg_id or timestamp < 0:
        raise ValueError("a delivery needs a message id and a non-negative timestamp")
    return " ".join(f"v1,{_sign(_key(s), msg_id, str(timestamp), body)}" for s in secrets)


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header the wire format defines for one attempt: the three `webhook-*` headers
    and the content type. Call it at each attempt, with that attempt's time."""
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, msg_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int,
           tolerance: int = TOLERANCE) -> None:
    """Check a delivery as a receiver does; raises BadSignature saying why it fails.

    Header names are matched case-insensitively; `body` is the raw request body. Any one
    `v1` signature made with `secret` passes (a rotation sends several); a timestamp more
    than `tolerance` seconds from `now` (unix seconds) is refused, to stop replays. A
    malformed `secret` raises BadSecret: that is the receiver's fault, not the sender's.
    """
    found = {name.lower(): value for name, value in headers.items()}
    msg_id = found.get("webhook-id", "")
    timestamp = found.get("webhook-timestamp", "")
    signatures = found.get("webhook-signature", "")
    for name, value in (("id", msg_id), ("timestamp", timestamp), ("signature", signatures)):
        if not value:
            raise BadSignature(f"the webhook-{name} header is missing or empty")
    if not (timestamp.isascii() and timestamp.isdigit()
            and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise BadSignature("the webhook-timestamp header is not unix seconds")
    age = now - int(timestamp)
    if age > tolerance:
        raise BadSignature(f"the webhook-timestamp is {age} s old, more than {tolerance} s")
    if -age > tolerance:
        raise BadSignature(f"the webhook-timestamp is {-age} s ahead, more than {tolerance} s")
    expected = _sign(_key(secret), msg_id, timestamp, body).encode()
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        # Compared as base64 text: a sender encodes canonically, so a non-canonical
        # spelling of the right bytes is refused too. compare_digest's time does not
        # depend on where the values differ.
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return
    raise BadSignature("no v1 signature in webhook-signature matches the secret")
