"""Webhook secrets at rest: AES-256-GCM round trips, and every misuse refused with a
SecretError that reveals neither the key nor the secret."""

from __future__ import annotations

import base64
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.adapters.secrets import SecretBox, SecretError, generate_key

KEY = bytes(range(32))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROW = b"endpoint-42"


@given(plaintext=st.text(), aad=st.binary(max_size=64))
@settings(max_examples=200)
def test_what_is_sealed_opens_with_the_same_key_and_aad(plaintext: str, aad: bytes) -> None:
    box = SecretBox(KEY)
    assert box.open(box.seal(plaintext, aad), aad) == plaintext


def test_the_sealed_format_is_versioned_and_hides_the_plaintext() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    assert blob[0] == 1
    assert len(blob) == 1 + 12 + len(SECRET) + 16
    assert SECRET.encode() not in blob


def test_two_seals_of_the_same_secret_differ() -> None:
    box = SecretBox(KEY)
    sealed = {box.seal(SECRET, ROW) for _ in range(100)}
    assert len(sealed) == 100
    assert len({blob[1:13] for blob in sealed}) == 100  # a fresh nonce each time


def _refused(blob: bytes, aad: bytes = ROW, box: SecretBox | None = None) -> str:
    with pytest.raises(SecretError) as caught:
        (box or SecretBox(KEY)).open(blob, aad)
    message = str(caught.value)
    assert SECRET not in message
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    return message


def test_a_wrong_key_is_refused() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    assert "another STOCKFLOW_SECRET_KEY" in _refused(blob, box=SecretBox(bytes(32)))


def test_another_rows_aad_is_refused() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    assert "another row" in _refused(blob, aad=b"endpoint-43")
    _refused(blob, aad=b"")


def test_every_flipped_bit_is_refused() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    for at in range(len(blob)):
        for bit in range(8):
            changed = bytearray(blob)
            changed[at] ^= 1 << bit
            _refused(bytes(changed))


def test_a_truncated_or_extended_blob_is_refused() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    for size in range(len(blob)):
        _refused(blob[:size])
    _refused(blob + b"\x00")
    assert "too short" in _refused(b"")


def test_an_unknown_version_is_refused() -> None:
    blob = SecretBox(KEY).seal(SECRET, ROW)
    assert "version 2" in _refused(b"\x02" + blob[1:])


def test_the_setting_takes_standard_or_urlsafe_base64() -> None:
    rng = random.Random(3)
    for _ in range(50):
        key = rng.randbytes(32)
        blob = SecretBox(key).seal(SECRET, ROW)
        for text in (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode(),
                     base64.b64encode(key).decode().rstrip("="),
                     f"  {base64.b64encode(key).decode()}\n"):
            assert SecretBox.from_setting(text).open(blob, ROW) == SECRET


def test_generated_keys_are_random_and_usable() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 32
        box = SecretBox.from_setting(key)
        assert box.open(box.seal(SECRET, ROW), ROW) == SECRET


BAD_SETTINGS = [
    "",
    "not base64 at all!",
    "s3cr3t-passw0rd",
    base64.b64encode(b"sixteen byte key").decode(),
    base64.b64encode(bytes(range(33))).decode(),
    base64.b64encode(bytes(range(31))).decode(),
    "é" * 44,
    bytes(range(32)).hex(),
]


@pytest.mark.parametrize("value", BAD_SETTINGS)
def test_a_bad_setting_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(SecretError, match="STOCKFLOW_SECRET_KEY is base64 of exactly 32") as e:
        SecretBox.from_setting(value)
    assert e.value.__suppress_context__ or e.value.__context__ is None
    assert re.fullmatch(r"STOCKFLOW_SECRET_KEY is base64 of exactly 32 bytes \(make one: "
                        r"openssl rand -base64 32\); it (is not base64|decodes to \d+ bytes)",
                        str(e.value))
    assert not value or value not in repr(e.value)


def test_a_raw_key_must_be_32_bytes() -> None:
    for size in (0, 16, 24, 31, 33, 64):
        with pytest.raises(SecretError, match="32 bytes"):
            SecretBox(bytes(size))


def test_the_repr_reveals_nothing() -> None:
    key = generate_key()
    box = SecretBox.from_setting(key)
    for shown in (repr(box), str(box)):
        assert key not in shown
        assert KEY.hex() not in repr(SecretBox(KEY))
        assert "hidden" in shown
