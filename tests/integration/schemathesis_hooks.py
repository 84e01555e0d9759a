"""Hooks for the `schemathesis run` of test_api_schema (loaded by SCHEMATHESIS_HOOKS).

An Idempotency-Key names one request: the API refuses the same key with another body
(422, as documented and tested in test_api_promises). Schemathesis draws keys from the
header's schema alone and so sends `0` with every body; here a valid generated key is made
the key of its body, so that its checks judge each request on its own merits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    name = next((h for h in headers if h.lower() == "idempotency-key"), None)
    key = headers.get(name) if name else None
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        return  # an invalid key stays as generated: it must be refused
    asked = json.dumps([case.path, case.body], sort_keys=True, default=repr)
    headers[name] = f"{key[:180]}~{hashlib.sha256(asked.encode()).hexdigest()[:16]}"
