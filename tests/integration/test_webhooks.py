"""The webhook relay end to end: the processor and `stockflow relay` on the session's Kafka
and Postgres, endpoints registered with the CLI, a real HTTP receiver, and signatures
verified with the independent `standardwebhooks` package."""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.db import webhooks as hooks
from stockflow.adapters.publisher import Publisher
from stockflow.adapters.secrets import SecretBox
from stockflow.contract.topics import TopicKind
from stockflow.contract.webhooks import new_secret
from stockflow.devtools.localenv import LocalServices, free_port
from stockflow.devtools.workload import _Builder, generate
from stockflow.domain.webhooks import matches
from stockflow.engine.relay import RELAYED, read_event
from tests.factories import wh
from tests.integration.harness import (
    Env,
    log_of,
    make_env,
    publish,
    read_topic,
    ready,
    spawn,
    start_logged,
    wait_drained,
)
from tests.integration.webhook_receiver import Receiver, receiver

KEY = base64.b64encode(b"k" * 32).decode()


def _env(services: LocalServices, unique: str, schedule: str = "0,0.2,0.5,1",
         timeout: float = 2.0) -> Env:
    return make_env(services, unique, partitions=3, relay_group_id=f"r{unique}",
                    webhook_retry_schedule=schedule, webhook_timeout=timeout)


def _vars(env: Env, allow: str = "127.0.0.0/8") -> dict[str, str]:
    return {**os.environ, **env.env_vars, "STOCKFLOW_SECRET_KEY": KEY,
            "STOCKFLOW_RELAY_GROUP_ID": env.settings.relay_group_id,
            "STOCKFLOW_WEBHOOK_ALLOW_HTTP": "true",
            "STOCKFLOW_WEBHOOK_ALLOW_NETWORKS": allow,
            "STOCKFLOW_WEBHOOK_RETRY_SCHEDULE": env.settings.webhook_retry_schedule,
            "STOCKFLOW_WEBHOOK_TIMEOUT": str(env.settings.webhook_timeout),
            "STOCKFLOW_LOG_LEVEL": "INFO"}


def run_cli(env: Env, *args: str, allow: str = "127.0.0.0/8") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stockflow", *args], env=_vars(env, allow),
                          capture_output=True, text=True, timeout=60, check=False)


def cli(env: Env, *args: str) -> str:
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def add(env: Env, url: str, events: str, keys: str = "*") -> tuple[str, str]:
    out = cli(env, "webhooks", "add", url, "--events", events, "--keys", keys)
    words = dict(line.split()[:2] for line in out.splitlines() if line.strip())
    return words["endpoint"], words["secret"]


def relay(env: Env, allow: str = "127.0.0.0/8",
          metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    port = str(metrics_port or free_port())
    return start_logged("relay", {**_vars(env, allow), "STOCKFLOW_RELAY_METRICS_PORT": port})


def outputs(env: Env) -> list[bytes]:
    return [value for kind in RELAYED for _, value, _ in read_topic(env, kind) if value]


def expected(values: list[bytes], events: str, keys: str) -> dict[str, bytes]:
    want = {}
    for value in values:
        ev = read_event(value)
        assert ev is not None
        if matches(events.split(","), ev.type) and matches(keys.split(","), ev.subject):
            want[ev.event_id] = value
    return want


def until_received(env: Env, rx: Receiver, path: str, ids: set[str],
                   alive: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in alive:
            assert p.poll() is None, log_of(p)
        if ids <= {r.headers["webhook-id"] for r in rx.to(path)}:
            return
        time.sleep(0.3)
    missing = ids - {r.headers["webhook-id"] for r in rx.to(path)}
    raise AssertionError(f"{len(missing)} of {len(ids)} never delivered to {path}"
                         f"{where(env, missing)}; "
                         f"relay: {log_of(alive[-1])[-1500:] if alive else ''}")


def where(env: Env, missing: set[str]) -> str:
    """Where undelivered events stopped: never taken in, or queued and in which state."""
    with env.db() as conn:
        rows = conn.execute("SELECT status, count(*) FROM webhook_deliveries"
                            " WHERE event_id = ANY(%s) GROUP BY status",
                            [list(missing)]).fetchall()
    queued = {str(status): int(str(n)) for status, n in rows}
    return f" (queued: {queued}, never taken in: {len(missing) - sum(queued.values())})"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_every_matching_output_is_delivered_signed(services: LocalServices,
                                                   unique: str) -> None:
    env = _env(services, unique)
    workload = generate(events=5000, skus=30, warehouses=2, seed=31)
    with receiver() as rx:
        a, secret_a = add(env, rx.url("/a"), "stock.changed,low-stock.*")
        b, secret_b = add(env, rx.url("/b"), "reservation.*,oversell.detected", "SKU-0001*@*")
        proc, rel = spawn(env), relay(env)
        try:
            publish(env, workload.setup + workload.stream)
            wait_drained(env, alive=[proc])
            values = outputs(env)
            want_a = expected(values, "stock.changed,low-stock.*", "*")
            want_b = expected(values, "reservation.*,oversell.detected", "SKU-0001*@*")
            assert len(want_a) > 2000 and want_b  # thousands (interleaving varies the count)
            until_received(env, rx, "/a", set(want_a), [rel])
            until_received(env, rx, "/b", set(want_b), [rel])
        finally:
            stop(rel)
            stop(proc)
    for path, want, secret in (("/a", want_a, secret_a), ("/b", want_b, secret_b)):
        got = rx.to(path)
        verifier = Webhook(secret)
        for r in got:
            assert r.headers["webhook-id"] in want  # nothing that did not match
            assert r.body == want[r.headers["webhook-id"]]  # the output, byte for byte
            verifier.verify(r.body, r.headers)  # raises if the signature is wrong
            assert r.headers["content-type"].startswith("application/cloudevents+json")
    listed = json.loads(cli(env, "webhooks", "list", "--json"))
    assert {e["id"] for e in listed} == {a, b}
    assert all("secret" not in json.dumps(e).lower() for e in listed)


def test_relay_killed_mid_stream_loses_nothing(services: LocalServices, unique: str) -> None:
    rng = random.Random(unique)
    env = _env(services, unique)
    workload = generate(events=4000, skus=40, warehouses=2, seed=37)
    with receiver() as rx:
        add(env, rx.url("/all"), "*")
        proc, rel = spawn(env), relay(env)
        try:
            publish(env, workload.setup)
            chunks = [workload.stream[i:i + 400] for i in range(0, len(workload.stream), 400)]
            # four kills at random chunks: a coin per chunk left fewer than three about one
            # run in twenty
            kill_after = set(rng.sample(range(len(chunks)), min(4, len(chunks))))
            kills = 0
            for n, chunk in enumerate(chunks):
                publish(env, chunk)
                time.sleep(rng.uniform(0.3, 1.2))
                if n in kill_after:
                    rel.send_signal(signal.SIGKILL)
                    rel.wait(10)
                    kills += 1
                    rel = relay(env)
            assert kills >= 3
            wait_drained(env, alive=[proc])
            want = expected(outputs(env), "*", "*")
            until_received(env, rx, "/all", set(want), [rel], timeout=180)
        finally:
            stop(rel)
            stop(proc)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in rx.to("/all"):
        bodies[r.headers["webhook-id"]].add(r.body)
    assert set(bodies) == set(want)  # every one at least once, nothing else
    # a duplicate is the same event again: same id, same body
    assert all(b == {want[i]} for i, b in bodies.items())


def test_deliveries_are_listed_and_replayed(services: LocalServices, unique: str) -> None:
    env = _env(services, unique)
    with receiver() as rx:
        ep, _ = add(env, rx.url("/r"), "stock.changed")
        proc, rel = spawn(env), relay(env)
        try:
            publish(env, generate(events=200, skus=5, warehouses=1, seed=41).setup)
            wait_drained(env, alive=[proc])
            want = expected(outputs(env), "stock.changed", "*")
            until_received(env, rx, "/r", set(want), [rel])
            listed = json.loads(cli(env, "webhooks", "deliveries", ep, "--json"))
            assert {d["event_id"] for d in listed} == set(want)
            assert {d["status"] for d in listed} == {"delivered"}
            before = len(rx.to("/r"))
            out = cli(env, "webhooks", "replay", ep, "--since", "2000-01-01T00:00:00Z")
            assert out.startswith(f"{len(want)} deliveries queued again")
            deadline = time.monotonic() + 60
            while len(rx.to("/r")) < before + len(want) and time.monotonic() < deadline:
                time.sleep(0.3)
            again = rx.to("/r")[before:]
            assert sorted(r.headers["webhook-id"] for r in again) == sorted(want)
        finally:
            stop(rel)
            stop(proc)


def until_exhausted(env: Env, endpoints: list[str], each: int,
                    alive: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with env.db() as conn:
        while time.monotonic() < deadline:
            for p in alive:
                assert p.poll() is None, log_of(p)
            row = conn.execute("SELECT count(*) FILTER (WHERE status = 'exhausted')"
                               " FROM webhook_deliveries WHERE endpoint_id = ANY(%s)",
                               (endpoints,)).fetchone()
            if row == (each * len(endpoints),):
                return
            time.sleep(0.3)
    raise AssertionError("deliveries were not exhausted in time")


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_failing_receivers_follow_the_policy(services: LocalServices, unique: str) -> None:
    env = _env(services, unique, schedule="0,1,2,3", timeout=1.0)
    workload = generate(events=40, skus=4, warehouses=2, seed=43)
    with receiver() as rx:
        rx.script["/flaky"] = lambda n: (500, 0.0, {}) if n <= 2 else (200, 0.0, {})
        rx.script["/gone"] = lambda _n: (410, 0.0, {})
        rx.script["/slow"] = lambda _n: (200, 3.0, {})  # past the 1 s timeout
        rx.script["/moved"] = lambda _n: (302, 0.0, {"location": rx.url("/fast")})
        ids = {path: add(env, rx.url(path), "stock.changed")[0]
               for path in ("/flaky", "/gone", "/slow", "/moved", "/fast")}
        proc, rel = spawn(env), relay(env)
        try:
            time.sleep(3)  # the relay is consuming before the first output exists
            publish(env, workload.setup + workload.stream)
            wait_drained(env, alive=[proc])
            want = expected(outputs(env), "stock.changed", "*")
            until_received(env, rx, "/fast", set(want), [rel], timeout=60)
            fast_done = time.monotonic()
            until_received(env, rx, "/flaky", set(want), [rel], timeout=60)
            # /slow and /moved use up their four attempts (and /slow its 1 s timeouts)
            until_exhausted(env, [ids["/slow"], ids["/moved"]], len(want), [rel])
        finally:
            stop(rel)
            stop(proc)
    by_id: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rx.got:
        by_id[(r.path, r.headers["webhook-id"])].append(r.at)
    # every event reached /flaky three times, 1 s and then 2 s apart within the ±20% jitter,
    # never early; late by at most half a second (a tick, the queue's round trip, and this
    # 2-core machine also running the broker, Postgres and the processor)
    gaps: list[list[float]] = [[], []]
    for event_id in want:
        times = sorted(by_id[("/flaky", event_id)])
        assert len(times) == 3
        for i, (gap, wait) in enumerate(zip(_gaps(times), (1.0, 2.0), strict=True)):
            assert wait * 0.8 - 0.05 <= gap <= wait * 1.2 + 0.5, (event_id, _gaps(times))
            gaps[i].append(gap)
    # /slow and /moved: four attempts each, then exhausted; a redirect is never followed
    for path in ("/slow", "/moved"):
        failed = json.loads(cli(env, "webhooks", "deliveries", ids[path], "--failed", "--json"))
        for event_id in want:
            assert len(by_id[(path, event_id)]) == 4, (path, event_id)
        assert {d["event_id"] for d in failed} == set(want)
        assert {d["status"] for d in failed} == {"exhausted"}
    assert len(rx.to("/fast")) == len(want)  # nothing arrived there through the redirect
    # 410 disabled its endpoint after the first attempt of the first event(s)
    listed = {e["id"]: e for e in json.loads(cli(env, "webhooks", "list", "--json"))}
    gone = listed[ids["/gone"]]
    assert gone["state"] == "disabled" and "410" in gone["disabled_reason"]
    assert len(rx.to("/gone")) <= 8  # the attempts in flight when it answered 410
    assert listed[ids["/fast"]]["state"] == "enabled"
    # the healthy endpoint was not held up by the slow, failing and gone ones
    fast = [r.at for r in rx.to("/fast")]
    slow = [r.at for r in rx.to("/slow")]
    assert max(fast) < fast_done and max(fast) - min(fast) < 10
    print(f"\n/flaky retry gaps, s: after 1 s {min(gaps[0]):.2f}-{max(gaps[0]):.2f}, after 2 s "
          f"{min(gaps[1]):.2f}-{max(gaps[1]):.2f}; /fast: {len(fast)} deliveries over "
          f"{max(fast) - min(fast):.2f} s while /slow had {len(slow)} attempts over "
          f"{max(slow) - min(slow):.2f} s")


def _until(check: Callable[[], bool], seconds: float, alive: list[subprocess.Popen[bytes]],
           what: str) -> float:
    """Seconds until `check()` holds; every process in `alive` must stay up all along."""
    started = time.monotonic()
    while not check():
        for p in alive:
            assert p.poll() is None, log_of(p)
        assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def scrape(port: int) -> dict[str, float]:
    """The relay's metric samples, by name and labels as Prometheus writes them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {s.name + (json.dumps(s.labels, sort_keys=True) if s.labels else ""): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.mark.exclusive
def test_relay_waits_out_a_postgres_outage(services: LocalServices, unique: str) -> None:
    postgres = services.postgres
    assert postgres is not None, "outage tests need the Postgres the suite starts"
    env = _env(services, unique)
    workload = generate(events=3000, skus=30, warehouses=2, seed=47)
    half = len(workload.stream) // 2
    port = free_port()
    with receiver() as rx:
        add(env, rx.url("/all"), "*")
        proc, rel = spawn(env), relay(env, metrics_port=port)
        try:
            publish(env, workload.setup + workload.stream[:half])
            _until(lambda: len(rx.to("/all")) > 100 and ready(port), 90, [rel], "delivering")
            postgres.stop()
            noticed = _until(lambda: not ready(port), 30, [rel], "not ready in the outage")
            publish(env, workload.stream[half:])  # into the outage: both wait it out
            time.sleep(15)
            postgres.start()
            back = _until(lambda: ready(port), 120, [rel], "ready after the outage")
            wait_drained(env, alive=[proc])
            want = expected(outputs(env), "*", "*")
            until_received(env, rx, "/all", set(want), [rel], timeout=180)
            figures = scrape(port)
        finally:
            stop(rel)
            stop(proc)
    print(f"\nrelay not ready {noticed:.1f} s after Postgres stopped, ready {back:.1f} s "
          f"after it started; {len(want)} events delivered")
    assert {r.headers["webhook-id"] for r in rx.to("/all")} == set(want)
    assert figures["stockflow_webhook_db_outages_total"] >= 1
    assert figures['stockflow_webhook_attempts_total{"result": "delivered"}'] >= len(want)


def test_refused_addresses_are_refused_again_at_delivery(services: LocalServices,
                                                         unique: str) -> None:
    env = _env(services, unique, schedule="0,0.2")
    narrow = "127.0.0.1/32"  # the receiver's address, not the canary's (127.0.0.2)
    port = free_port()
    with receiver() as rx, receiver("127.0.0.2") as canary:
        p = canary.port
        refused = [f"http://127.0.0.2:{p}/plain", f"http://2130706434:{p}/decimal",
                   f"http://0x7f000002:{p}/hex", f"http://0177.0.0.2:{p}/octal",
                   f"http://127.2:{p}/short", f"http://[::ffff:127.0.0.2]:{p}/mapped",
                   f"http://[::ffff:7f00:2]:{p}/mapped-hex", f"http://[::1]:{p}/v6-loopback",
                   "http://169.254.169.254/latest/meta-data/"]
        for url in refused:
            done = run_cli(env, "webhooks", "add", url, "--events", "*", allow=narrow)
            assert done.returncode != 0 and "refused" in done.stderr, (url, done.stderr)
        # The same URLs in the table, as if registered under a wider allow-list that was
        # narrowed since, or written there behind the CLI's back: the relay checks again.
        box = SecretBox.from_setting(KEY)
        ids = [f"ep_ssrf{i}_{unique}" for i in range(len(refused))]
        with env.db() as conn:
            for endpoint_id, url in zip(ids, refused, strict=True):
                hooks.add_endpoint(conn, endpoint_id=endpoint_id, url=url, events=["*"],
                                   keys=["*"], description="",
                                   sealed=box.seal(new_secret(), endpoint_id.encode()))
        add(env, rx.url("/ok"), "*")
        proc, rel = spawn(env), relay(env, allow=narrow, metrics_port=port)
        try:
            publish(env, generate(events=60, skus=3, warehouses=1, seed=53).setup)
            wait_drained(env, alive=[proc])
            want = expected(outputs(env), "*", "*")
            until_received(env, rx, "/ok", set(want), [rel])
            until_exhausted(env, ids, len(want), [rel])
            figures = scrape(port)
        finally:
            stop(rel)
            stop(proc)
    assert canary.got == []  # not one request reached the refused address
    with env.db() as conn:
        errors = conn.execute("SELECT DISTINCT last_error FROM webhook_deliveries"
                              " WHERE endpoint_id = ANY(%s)", (ids,)).fetchall()
    assert errors and all(str(e).startswith("refused by the SSRF guard") for (e,) in errors), errors
    assert figures['stockflow_webhook_attempt_failures_total{"cause": "ssrf"}'] \
        == 2 * len(ids) * len(want)


def test_order_statuses_can_be_subscribed_to(services: LocalServices, unique: str) -> None:
    env = _env(services, unique)
    with env.db() as conn:
        warehouses_db.add(conn, wh("W1", 1), actor="test")
    publish(env, [_Builder(1, datetime.now(UTC)).item(
        "receipt.received", "A@W1", {"receipt_id": "R1", "quantity": 2})])
    with receiver() as rx:
        _, secret = add(env, rx.url("/orders"), "order.*")
        proc, rel = spawn(env), relay(env)
        coordinator = start_logged("coordinate", _vars(env))
        try:
            wait_drained(env, alive=[proc])
            with Publisher(env.settings) as orders:
                orders.request_order("O1", [{"line_id": "1", "sku": "A", "quantity": 2}])
                orders.request_order("O2", [{"line_id": "1", "sku": "A", "quantity": 5}])
            deadline = time.monotonic() + 60
            while len(statuses := [v for _, v, _ in read_topic(env, TopicKind.ORDER_STATUS)
                                   if v]) < 2:
                assert coordinator.poll() is None, log_of(coordinator)
                assert time.monotonic() < deadline, "no order statuses"
                time.sleep(0.3)
            want = {json.loads(v)["id"]: v for v in statuses}
            until_received(env, rx, "/orders", set(want), [rel])
        finally:
            for p in (rel, coordinator, proc):
                stop(p)
    got = rx.to("/orders")
    verifier = Webhook(secret)
    for r in got:
        verifier.verify(r.body, r.headers)
        assert r.body == want[r.headers["webhook-id"]]
    types = sorted(json.loads(r.body)["type"] for r in got)
    assert types == ["order.allocated", "order.rejected"]
