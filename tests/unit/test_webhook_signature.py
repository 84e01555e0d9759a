"""Standard Webhooks signatures: ours against the independent `standardwebhooks` package,
secret rotation, and 10,000 tampered deliveries, all refused by our verifier, by
standardwebhooks and by the receiver snippets the README documents. The snippets are
executed from the markdown itself, not copied here."""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from stockflow.contract.webhooks import (
    CONTENT_TYPE,
    BadSecret,
    BadSignature,
    headers,
    new_secret,
    signature,
    verify,
)

# Where the receiver section lives; the fenced blocks defining the verifiers are run.
RECEIVER_DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"

Verifier = Callable[[str, Mapping[str, str], bytes], bool]
FUZZ_CASES = 10_000
NODE_CASES = 400


def _code_block(language: str, defines: str) -> str:
    text = RECEIVER_DOC.read_text()
    blocks = re.findall(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    found = [code for tag, code in blocks if tag == language and defines in code]
    assert len(found) == 1, f"{RECEIVER_DOC} needs one {language} block with {defines!r}"
    return cast(str, found[0])


@pytest.fixture(scope="module")
def documented() -> Verifier:
    """`verify_webhook` as the receiver section's Python block defines it."""
    namespace: dict[str, Any] = {"__name__": "documented_receiver"}
    code = compile(_code_block("python", "def verify_webhook("), str(RECEIVER_DOC), "exec")
    exec(code, namespace)  # noqa: S102 - the documented snippet is the code under test
    return cast(Verifier, namespace["verify_webhook"])


def ours(secret: str, hdrs: Mapping[str, str], body: bytes) -> bool:
    try:
        verify(secret, hdrs, body, now=int(time.time()))
    except BadSignature:
        return False
    return True


def reference(secret: str, hdrs: Mapping[str, str], body: bytes) -> bool:
    """standardwebhooks refuses some garbled headers with errors other than its own
    (a ValueError unpacking a signature without a comma, a binascii.Error, a
    UnicodeDecodeError for a body that is not UTF-8): each is a refusal."""
    try:
        Webhook(secret).verify(body, dict(hdrs), json_parse=False)
    except Exception:  # noqa: BLE001 - whatever it raises, it did not accept
        return False
    return True


def _random_secret(rng: random.Random) -> str:
    return "whsec_" + base64.b64encode(rng.randbytes(rng.choice([24, 32, 64]))).decode()


def _random_body(rng: random.Random) -> bytes:
    if rng.random() < 0.05:
        return rng.choice([b"", b"{}", b"[]"])
    text = "".join(rng.choices("abcXYZ09 -_éß€😀\"\\\n", k=rng.randrange(12)))
    event = {"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))),
             "type": "stock.changed", "subject": f"SKU-{rng.randrange(999)}@WH-1",
             "data": {"note": text, "on_hand": rng.randrange(-5, 10**6), "version": 3}}
    indent = rng.choice([None, None, 2])
    return json.dumps(event, ensure_ascii=rng.random() < 0.5, indent=indent).encode()


def _delivery(rng: random.Random, now: int) -> tuple[str, dict[str, str], bytes]:
    """A valid delivery: the receiver's secret, the headers and the body."""
    secret = _random_secret(rng)
    msg_id = rng.choice([str(uuid.UUID(int=rng.getrandbits(128))), f"msg_{rng.getrandbits(64):x}"])
    body = _random_body(rng)
    return secret, headers([secret], msg_id, now, body), body


def _flip_bit(data: bytes, rng: random.Random) -> bytes:
    changed = bytearray(data)
    changed[rng.randrange(len(changed))] ^= 1 << rng.randrange(8)
    return bytes(changed)


KINDS = ("body-bit", "body-byte-added", "body-byte-removed", "body-whitespace", "id",
         "timestamp", "timestamp-outside-tolerance", "timestamp-garbled", "signature-bit",
         "signature-truncated", "signature-version", "signature-empty", "signature-garbage",
         "missing-header", "wrong-secret")
WHITESPACE = b" \n\t\r"


def _tamper(rng: random.Random, kind: str, now: int, secret: str, hdrs: dict[str, str],
            body: bytes) -> tuple[str, dict[str, str], bytes]:
    """The delivery changed in one way of `kind`; the receiver keeps its secret unless the
    kind says otherwise."""
    hdrs = dict(hdrs)
    msg_id, sig = hdrs["webhook-id"], hdrs["webhook-signature"]
    match kind:
        case "body-bit" if body:
            body = _flip_bit(body, rng)
        case "body-byte-removed" if body:
            at = rng.randrange(len(body))
            body = body[:at] + body[at + 1:]
        case "body-bit" | "body-byte-removed" | "body-byte-added":
            at = rng.randrange(len(body) + 1)
            body = body[:at] + rng.randbytes(1) + body[at:]
        case "body-whitespace":
            spaces = [i for i, b in enumerate(body) if b in WHITESPACE]
            if spaces and rng.random() < 0.5:
                at = rng.choice(spaces)
                space = bytes([rng.choice([b for b in WHITESPACE if b != body[at]])])
                body = body[:at] + rng.choice([b"", space]) + body[at + 1:]
            else:
                at = rng.randrange(len(body) + 1)
                body = body[:at] + bytes([rng.choice(WHITESPACE)]) + body[at:]
        case "id":
            at = rng.randrange(len(msg_id))
            other = rng.choice([c for c in "0123456789abcdef-_x" if c != msg_id[at]])
            hdrs["webhook-id"] = rng.choice([msg_id[:at] + other + msg_id[at + 1:],
                                             msg_id + other, msg_id[:-1]])
        case "timestamp":
            hdrs["webhook-timestamp"] = str(now + rng.choice([-1, 1]) * rng.randint(1, 250))
        case "timestamp-outside-tolerance":  # signed properly, but too old or too new
            at = now + rng.choice([-1, 1]) * rng.randint(330, 10**7)
            hdrs = headers([secret], msg_id, at, body)
        case "timestamp-garbled":
            hdrs["webhook-timestamp"] = rng.choice(["", "abc", "-5", "1e9", "0x1f", "١٢٣"])
        case "signature-bit":
            mac = _flip_bit(base64.b64decode(sig[3:]), rng)
            hdrs["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
        case "signature-truncated":
            hdrs["webhook-signature"] = sig[:rng.randrange(len(sig))]
        case "signature-version":
            wrong = rng.choice(["v1a,", "v2,", "V1,", "v0,", "v1;", "v1 ,", ","])
            hdrs["webhook-signature"] = wrong + sig[3:]
        case "signature-empty":
            hdrs["webhook-signature"] = ""
        case "signature-garbage":
            hdrs["webhook-signature"] = "v1," + rng.choice([
                base64.b64encode(rng.randbytes(rng.choice([16, 32, 33]))).decode(),
                "".join(rng.choice("ABCxyz019+/=!$ ") for _ in range(rng.randrange(1, 60))),
            ])
        case "missing-header":
            del hdrs[rng.choice(["webhook-id", "webhook-timestamp", "webhook-signature"])]
        case "wrong-secret":
            secret = _random_secret(rng)
        case _:
            raise AssertionError(kind)
    return secret, hdrs, body


def _cases(seed: int, count: int, now: int) -> Iterator[tuple[str, str, dict[str, str], bytes]]:
    """(kind, receiver's secret, headers, body), every kind in turn."""
    rng = random.Random(seed)
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        yield kind, *_tamper(rng, kind, now, *_delivery(rng, now))


def test_ten_thousand_tampered_deliveries_are_all_refused(documented: Verifier) -> None:
    now = int(time.time())
    rng = random.Random(7)
    accepted: list[tuple[str, str]] = []
    kinds: Counter[str] = Counter()
    for n in range(FUZZ_CASES):
        kind = KINDS[n % len(KINDS)]
        valid = _delivery(rng, now)
        if n % 8 == 0:  # untouched it passes everywhere: the refusals below are the tampering's
            assert ours(*valid) and reference(*valid) and documented(*valid), valid
        tampered = _tamper(rng, kind, now, *valid)
        assert tampered != valid, kind
        kinds[kind] += 1
        for name, check in (("ours", ours), ("standardwebhooks", reference),
                            ("documented", documented)):
            if check(*tampered):
                accepted.append((kind, name))
    assert not accepted, f"{len(accepted)} tampered deliveries accepted, e.g. {accepted[:5]}"
    assert sum(kinds.values()) == FUZZ_CASES
    assert min(kinds.values()) >= FUZZ_CASES // len(KINDS)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
IDS = st.uuids().map(str) | st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True)


@given(value=JSON, ascii_only=st.booleans(), msg_id=IDS)
@example(value={}, ascii_only=True, msg_id="msg_1")
@example(value=[], ascii_only=False, msg_id="msg_2")
@example(value={"note": "Grüße 😀 \u2028 \\u0000"}, ascii_only=False, msg_id="msg_3")
@settings(max_examples=300, deadline=None)
def test_our_deliveries_verify_with_standardwebhooks(
        documented: Verifier, value: Any, ascii_only: bool, msg_id: str) -> None:
    secret = new_secret()
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    sent = headers([secret], msg_id, int(time.time()), body)
    assert Webhook(secret).verify(body, sent) == json.loads(body)
    assert ours(secret, sent, body)
    assert documented(secret, sent, body)


@given(value=JSON, msg_id=IDS)
@settings(max_examples=200, deadline=None)
def test_standardwebhooks_signatures_verify_with_ours(value: Any, msg_id: str) -> None:
    secret = new_secret()
    body = json.dumps(value, ensure_ascii=False).encode()
    now = int(time.time())
    signed = Webhook(secret).sign(msg_id, datetime.fromtimestamp(now, UTC), body.decode())
    sent = {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": signed}
    verify(secret, sent, body, now=now)
    assert signature([secret], msg_id, now, body) == signed


def test_an_empty_body_is_signed_and_verified(documented: Verifier) -> None:
    secret = new_secret()
    sent = headers([secret], "msg_empty", int(time.time()), b"")
    assert ours(secret, sent, b"")
    assert reference(secret, sent, b"")
    assert documented(secret, sent, b"")


def test_a_rotation_signs_with_every_secret_and_either_verifies(documented: Verifier) -> None:
    old, new, other = new_secret(), new_secret(), new_secret()
    body, now = b'{"id":"e1"}', int(time.time())
    sent = headers([old, new], "e1", now, body)
    assert sent["webhook-signature"] == " ".join(
        (signature([old], "e1", now, body), signature([new], "e1", now, body)))
    assert sent["webhook-signature"].count("v1,") == 2
    for receiver in (old, new):
        assert ours(receiver, sent, body)
        assert reference(receiver, sent, body)
        assert documented(receiver, sent, body)
    assert not ours(other, sent, body)
    assert not reference(other, sent, body)
    assert not documented(other, sent, body)


def test_headers_are_the_wire_format() -> None:
    secret = new_secret()
    sent = headers([secret], "e1", 1_700_000_000, b"{}")
    assert sent == {
        "content-type": CONTENT_TYPE,
        "webhook-id": "e1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature([secret], "e1", 1_700_000_000, b"{}"),
    }
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", sent["webhook-signature"])


def test_a_known_signature() -> None:
    # From openssl: printf 'msg_1.1700000000.{}' | openssl dgst -sha256 -mac HMAC
    #   -macopt hexkey:000102...1f -binary | base64
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    assert signature([secret], "msg_1", 1_700_000_000, b"{}") == (
        "v1,fhksJF5ElKjlPoT/jtefCO5XjQPvhf7Dhf/8R1ad9yU=")


def test_new_secrets_are_random_and_well_formed() -> None:
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_" + "A" * 16, "whsec_", "é"])
def test_a_bad_secret_is_refused_without_echoing_it(secret: str) -> None:
    with pytest.raises(BadSecret) as caught:
        signature([secret], "e1", 0, b"")
    assert secret.removeprefix("whsec_") not in str(caught.value) or secret == "whsec_"
    with pytest.raises(BadSecret):
        verify(secret, headers([new_secret()], "e1", 0, b""), b"", now=0)


def test_signing_needs_a_secret_an_id_and_a_timestamp() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        signature([], "e1", 0, b"")
    with pytest.raises(ValueError, match="message id"):
        signature([new_secret()], "", 0, b"")
    with pytest.raises(ValueError, match="non-negative"):
        signature([new_secret()], "e1", -1, b"")


def _refusal(secret: str, sent: Mapping[str, str], body: bytes, now: int) -> str:
    with pytest.raises(BadSignature) as caught:
        verify(secret, sent, body, now=now)
    return str(caught.value)


def test_verify_says_why_it_refuses() -> None:
    secret, now, body = new_secret(), 1_700_000_000, b"{}"
    sent = headers([secret], "e1", now, body)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        missing = {k: v for k, v in sent.items() if k != name}
        assert name in _refusal(secret, missing, body, now)
        assert name in _refusal(secret, {**sent, name: ""}, body, now)
    for garbled in ("abc", "1.5", " 1700000000", "-1", "١٢٣", "9" * 13):
        assert "not unix seconds" in _refusal(
            secret, {**sent, "webhook-timestamp": garbled}, body, now)
    assert "301 s old" in _refusal(secret, sent, body, now + 301)
    assert "301 s ahead" in _refusal(secret, sent, body, now - 301)
    assert "matches" in _refusal(new_secret(), sent, body, now)


def test_verify_allows_the_tolerance_and_any_header_case() -> None:
    secret, now, body = new_secret(), 1_700_000_000, b"{}"
    sent = headers([secret], "e1", now, body)
    verify(secret, sent, body, now=now + 300)
    verify(secret, sent, body, now=now - 300)
    verify(secret, {k.title(): v for k, v in sent.items()}, body, now=now)
    verify(secret, sent, body, now=now + 3600, tolerance=3600)


def test_verify_finds_the_matching_signature_among_others() -> None:
    secret, now, body = new_secret(), 1_700_000_000, b"{}"
    good = signature([secret], "e1", now, body)
    noisy = f"v1a,{good[3:]} garbage v1,{base64.b64encode(bytes(32)).decode()} {good}"
    verify(secret, {"webhook-id": "e1", "webhook-timestamp": str(now),
                    "webhook-signature": noisy}, body, now=now)


def test_the_documented_node_receiver(tmp_path: Path) -> None:
    node = shutil.which("node")
    # Node.js is part of this machine kind; without it the documented receiver is untested
    assert node is not None, "node is required to run the documented Node.js receiver"
    harness = """
const lines = require("node:fs").readFileSync(0, "utf8").split("\\n").filter(Boolean);
for (const line of lines) {
  const c = JSON.parse(line);
  console.log(verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "base64")) === true);
}
"""
    script = tmp_path / "receiver.js"
    script.write_text(_code_block("js", "function verifyWebhook(") + harness)

    now = int(time.time())
    rng = random.Random(11)
    cases = [("valid", *_delivery(rng, now)) for _ in range(NODE_CASES // 4)]
    cases.extend(_cases(seed=12, count=NODE_CASES - len(cases), now=now))
    old, new, body = new_secret(), new_secret(), b'{"id":"e1"}'
    rotated = headers([old, new], "e1", now, body)
    cases += [("rotation-old", old, rotated, body), ("rotation-new", new, rotated, body),
              ("rotation-other", new_secret(), rotated, body)]
    lines = "".join(json.dumps({"secret": secret, "headers": hdrs,
                                "body": base64.b64encode(body).decode()}) + "\n"
                    for _, secret, hdrs, body in cases)
    done = subprocess.run([node, str(script)], input=lines, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split()
    assert len(answers) == len(cases)
    expected = [kind in {"valid", "rotation-old", "rotation-new"} for kind, *_ in cases]
    wrong = [(kind, answer) for (kind, *_), answer, want in zip(cases, answers, expected,
                                                                 strict=True)
             if (answer == "true") != want]
    assert not wrong, f"the Node.js receiver got {len(wrong)} wrong, e.g. {wrong[:5]}"
