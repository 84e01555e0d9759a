"""Checkouts that wait (`?wait`) while the processor is stopped, as during a restart: they
must not take the API's reads down. Through a real server, on the session's Kafka and
Postgres."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import httpx

from stockflow.devtools.localenv import LocalServices
from tests.integration.harness import make_env, processor_thread, wait_drained
from tests.integration.test_api import api_server, bearer, new_key

WAITERS = 100
WAIT = 10


def read_for(base: str, token: str, until: float) -> list[tuple[int, float]]:
    """Read a key every 50 ms until `until` (time.time()): each answer's status and time."""
    got = []
    with httpx.Client(base_url=base, timeout=60) as client:
        while time.time() < until:
            started = time.perf_counter()
            r = client.get("/v1/stock/HOT-1@WH-1", headers=bearer(token))
            got.append((r.status_code, time.perf_counter() - started))
            time.sleep(0.05)
    return got


def test_waiting_checkouts_leave_reads_fast_while_the_processor_is_down(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "checkout", "write")
    _, reader = new_key(env, "storefront", "read")
    with api_server(env, STOCKFLOW_API_RATE_LIMIT="100000",
                    STOCKFLOW_API_RATE_BURST="100000") as api:
        with processor_thread(env):
            seeded = api.post("/v1/receipts", params={"wait": 15}, headers=bearer(writer),
                              json={"sku": "HOT-1", "warehouse": "WH-1", "quantity": 1000})
            assert seeded.json()["outcomes"][0]["outcome"] == "applied", seeded.text
            wait_drained(env)
        # the processor is stopped now, and no coordinator runs: no checkout gets an answer
        base = str(api.base_url)

        async def checkout(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post(
                "/v1/orders", params={"wait": WAIT}, headers=bearer(writer),
                json={"order_id": f"O-{i}", "lines": [
                    {"line_id": "1", "sku": "HOT-1", "quantity": 1}]})

        async def run() -> tuple[list[httpx.Response], float]:
            limits = httpx.Limits(max_connections=WAITERS)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                started = time.monotonic()
                answers = await asyncio.gather(*(checkout(client, i) for i in range(WAITERS)))
                return list(answers), time.monotonic() - started

        # the reader is a process of its own: in this one, its timings would include the
        # time the test's own client spends sending the checkouts
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            reading = pool.submit(read_for, base, reader, time.time() + WAIT + 1)
            answers, took = asyncio.run(run())
            reads = reading.result()
    codes = sorted({r.status_code for r in answers})
    assert codes == [202], [r.text for r in answers if r.status_code != 202][:3]
    assert all(r.json()["status"] == "pending" for r in answers)  # nothing ran to answer
    assert took < WAIT + 5, took  # every checkout waited its 10 s, together
    assert len(reads) > 50, len(reads)
    assert {code for code, _ in reads} == {200}, reads
    times = sorted(t for _, t in reads)
    p99 = times[min(len(times) - 1, round(0.99 * len(times)))]
    print(f"\n{len(reads)} reads while {WAITERS} checkouts waited {WAIT} s: median "
          f"{statistics.median(times) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert p99 < 0.1, f"p99 {p99 * 1000:.0f} ms"


def test_an_exhausted_pool_answers_503_with_retry_after(services: LocalServices,
                                                        unique: str) -> None:
    env = make_env(services, unique)
    _, reader = new_key(env, "storefront", "read")
    with api_server(env, STOCKFLOW_API_POOL_SIZE="2", STOCKFLOW_API_POOL_WAIT="0.5") as api, \
            env.db() as locker:
        assert api.get("/v1/stock/A@W", headers=bearer(reader)).status_code == 404
        base = str(api.base_url)

        async def run() -> tuple[httpx.Response, list[httpx.Response]]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                # two reads block behind the lock, each holding one of the two connections
                locker.execute("BEGIN")
                locker.execute("LOCK TABLE stock IN ACCESS EXCLUSIVE MODE")
                blocked = [asyncio.ensure_future(client.get(
                    "/v1/stock/A@W", headers=bearer(reader))) for _ in range(2)]
                await asyncio.sleep(0.5)
                refused = await client.get("/v1/stock/A@W", headers=bearer(reader))
                locker.execute("COMMIT")
                return refused, list(await asyncio.gather(*blocked))

        refused, blocked = asyncio.run(run())
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["detail"]
    assert [r.status_code for r in blocked] == [404, 404]  # answered once the lock went
