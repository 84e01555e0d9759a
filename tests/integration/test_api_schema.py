"""Property-based: schemathesis reads the live API's OpenAPI document and sends requests
generated from it (valid and invalid) through a real server; no answer may be a 5xx or
stray from the document (status codes, headers, bodies).

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
from schemathesis.core.result import Ok

from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import generate
from tests.integration.harness import make_env, processor_thread, publish, wait_drained
from tests.integration.test_api import api_server, new_key

EXAMPLES = int(os.environ.get("STOCKFLOW_API_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def live_api(services: LocalServices) -> Iterator[tuple[str, str]]:
    """(base URL, read token) of an API over a little stock."""
    env = make_env(services, uuid.uuid4().hex[:10])
    with processor_thread(env) as running:
        publish(env, generate(events=300, skus=5, warehouses=2, seed=71).setup)
        wait_drained(env)
        running.check()
    _, token = new_key(env, "schemathesis", "read")
    with api_server(env, STOCKFLOW_API_RATE_LIMIT="1000000",
                    STOCKFLOW_API_RATE_BURST="1000000") as client:
        yield str(client.base_url), token


def test_the_api_keeps_to_its_openapi_document(live_api: tuple[str, str]) -> None:
    base, token = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()
                  if isinstance(result, Ok)]
    assert len(operations) >= 7, [op.label for op in operations]
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base, headers=headers)

        conforms()
