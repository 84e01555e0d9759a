"""Property-based: `schemathesis run` reads the live API's OpenAPI document and sends
requests generated from it (examples, boundary coverage, valid and invalid fuzzing) through
a real server, reads and writes, with all of its default checks: no 5xx, status codes,
headers, content types and bodies as documented, valid requests accepted, invalid ones
refused, and authentication honoured.

A modest count per route runs in the suite; the long run:
    STOCKFLOW_API_EXAMPLES=1000 STOCKFLOW_API_SEED=$RANDOM \
        scripts/test tests/integration/test_api_schema.py -s
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import generate
from tests.integration.harness import make_env, processor_thread, publish
from tests.integration.test_api import api_server, new_key

EXAMPLES = int(os.environ.get("STOCKFLOW_API_EXAMPLES", "25"))
SEED = os.environ.get("STOCKFLOW_API_SEED", "24")  # fixed in CI: the same cases every run


@pytest.fixture(scope="module")
def live_api(services: LocalServices) -> Iterator[tuple[str, str]]:
    """(base URL, a token with every scope) of an API over a little stock: admin too, so
    that the warehouse registry's changes are exercised, not only refused."""
    env = make_env(services, uuid.uuid4().hex[:10])
    publish(env, generate(events=300, skus=5, warehouses=2, seed=71).setup)
    _, token = new_key(env, "schemathesis", "read,write,admin")
    # the processor runs all along: writes with ?wait get their outcome promptly
    with processor_thread(env) as running, api_server(
            env, STOCKFLOW_API_RATE_LIMIT="1000000", STOCKFLOW_API_RATE_BURST="1000000") \
            as client:
        yield str(client.base_url), token
        running.check()


@pytest.mark.timeout(300 + 10 * EXAMPLES)
def test_the_api_keeps_to_its_openapi_document(live_api: tuple[str, str],
                                               tmp_path: Path) -> None:
    base, token = live_api
    here = Path(__file__).parent
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file",
         str(here / "schemathesis.toml"), "run", f"{base}/openapi.json",
         "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing",
         "--seed", SEED,
         "--request-timeout", "45",  # beyond the longest ?wait
         "--generation-database", "none", "--no-color", "--output-sanitize", "true"],
        capture_output=True, text=True, cwd=tmp_path, timeout=240 + 10 * EXAMPLES, check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
             "STOCKFLOW_API_TOKEN": token,
             "PYTHONPATH": str(here.parents[1])})
    summary = run.stdout[-20000:]
    print(summary)
    assert run.returncode == 0, summary
    assert "operations" in summary.lower() or "passed" in summary.lower(), summary
