"""Property-based: schemathesis reads the live API's OpenAPI document and sends requests
generated from it (valid and invalid) through a real server, reads and writes; no answer
may be a 5xx or stray from the document (status codes, headers, bodies).

A modest count per route runs in the suite; the long run:
    STOCKFLOW_API_EXAMPLES=2000 scripts/test tests/integration/test_api_schema.py
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import generate
from tests.integration.harness import make_env, processor_thread, publish
from tests.integration.test_api import api_server, new_key

EXAMPLES = int(os.environ.get("STOCKFLOW_API_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def live_api(services: LocalServices) -> Iterator[tuple[str, str]]:
    """(base URL, read and write token) of an API over a little stock."""
    env = make_env(services, uuid.uuid4().hex[:10])
    publish(env, generate(events=300, skus=5, warehouses=2, seed=71).setup)
    _, token = new_key(env, "schemathesis", "read,write")
    # the processor runs all along: writes with ?wait get their outcome promptly
    with processor_thread(env) as running, api_server(
            env, STOCKFLOW_API_RATE_LIMIT="1000000", STOCKFLOW_API_RATE_BURST="1000000") \
            as client:
        yield str(client.base_url), token
        running.check()


def _conforms(op: Any, base: str, headers: dict[str, str]) -> None:
    """Run `EXAMPLES` generated requests of one operation through the live server."""
    # A write the schema allows may still be one the processor would refuse (a transfer to
    # its own warehouse, a reference on two keys): 422, as documented.
    excluded = [positive_data_acceptance] if op.method.upper() == "POST" else []

    @given(case=op.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=base, headers=headers, excluded_checks=excluded,
                               timeout=45)  # beyond the longest ?wait

    check()


def test_the_api_keeps_to_its_openapi_document(live_api: tuple[str, str]) -> None:
    base, token = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()
                  if isinstance(result, Ok)]
    assert len(operations) >= 16, [op.label for op in operations]
    for op in operations:
        _conforms(op, base, {"Authorization": f"Bearer {token}"})
