"""CSV imports end to end on the session's Kafka and Postgres: `stockflow import` and
`POST /v1/imports` through a real uvicorn server. A file with bad rows reports every bad
line and publishes nothing; a good one moves stock once, however often it is re-sent under
its id, and `GET /v1/imports/{id}` follows the processor through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from stockflow.contract.topics import INPUTS, TopicKind
from stockflow.devtools.localenv import LocalServices
from tests.integration.harness import (
    Env,
    db_quantities,
    high_watermarks,
    make_env,
    processor_thread,
    read_topic,
)
from tests.integration.test_api import api_server, bearer, new_key


def run_import(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stockflow", "import", *args],
                          env={**os.environ, **env.env_vars}, capture_output=True, text=True,
                          timeout=120, check=False)


def published(env: Env) -> int:
    """Input messages and transaction markers: 0 only if no transaction was ever begun."""
    return sum(high_watermarks(env, INPUTS).values())


def progress(api: httpx.Client, import_id: str, headers: dict[str, str],
             timeout: float = 60) -> dict[str, Any]:
    """The import's progress once nothing is pending."""
    deadline = time.monotonic() + timeout
    while True:
        got = api.get(f"/v1/imports/{import_id}", headers=headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        if body["pending"] == 0 or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_the_cli_reports_every_bad_line_and_publishes_nothing(
        services: LocalServices, unique: str, tmp_path: Path) -> None:
    env = make_env(services, unique)
    counts = tmp_path / "counts.csv"
    counts.write_text("sku,warehouse,on_hand\n"
                      + "".join(f"C-{i},WH-1,{i}\n" for i in range(500))
                      + "C-bad,WH-1,-4\n"  # line 502
                      + "C-x,WH 1,3\n"  # 503
                      + "C-y,WH-1,lots\n"  # 504
                      + "".join(f"C-{i},WH-2,{i}\n" for i in range(500)))
    done = run_import(env, str(counts), "--kind", "counts")
    assert done.returncode == 2, done.stderr
    reported = [line for line in done.stderr.splitlines() if line.startswith("counts.csv:")]
    assert [line.split(":")[1] for line in reported] == ["502", "503", "504"], done.stderr
    assert reported[0].endswith("on_hand: -4 is outside 0..1000000000")  # the processor's words
    assert "schema_violation" in reported[1] and "not a whole number: 'lots'" in reported[2]
    assert "1,003 rows checked" in done.stdout and "3 bad" in done.stdout
    assert "nothing imported: 3 bad rows" in done.stderr
    assert published(env) == 0

    dry = run_import(env, str(counts), "--kind", "counts", "--dry-run", "--allow-partial")
    assert dry.returncode == 0 and "dry run: nothing published" in dry.stdout, dry.stderr
    assert published(env) == 0
    with env.db() as conn:
        assert conn.execute("SELECT count(*) FROM imports").fetchone() == (0,)

    with processor_thread(env) as running:
        partial = run_import(env, str(counts), "--kind", "counts", "--allow-partial",
                             "--id", "counts-2026-11-22", "--actor", "erp-sync",
                             "--wait")
        assert partial.returncode == 0, partial.stderr
        assert "1,000 rows published in one transaction" in partial.stdout, partial.stdout
        assert "1,000 applied, 0 no-op, 0 rejected, 0 pending" in partial.stdout
        assert len(read_topic(env, TopicKind.ADJUSTMENTS)) == 1000
        # a retry under the same id re-sends the same event ids: counted duplicates
        again = run_import(env, str(counts), "--kind", "counts", "--allow-partial",
                           "--id", "counts-2026-11-22", "--wait")
        assert again.returncode == 0, again.stderr
        assert len(read_topic(env, TopicKind.ADJUSTMENTS)) == 2000
        counts.write_text("sku,warehouse,on_hand\nC-1,WH-1,1\n")
        clash = run_import(env, str(counts), "--kind", "counts",
                           "--id", "counts-2026-11-22")
        assert clash.returncode == 2 and "was used for another file" in clash.stderr
        running.check()
    stock = db_quantities(env)
    assert len(stock) == 1000
    assert all(stock[f"C-{i}@WH-{w}"][0] == i for i in range(500) for w in (1, 2))
    with env.db() as conn:
        actors = conn.execute("SELECT actor, count(*) FROM ledger GROUP BY actor").fetchall()
    assert actors == [("erp-sync", 1000)]


def test_http_imports_check_publish_and_report_progress(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms-upload", "write")
    _, reader = new_key(env, "ops-view", "read")
    w, r = bearer(writer), bearer(reader)
    def receipts(zero_every: int = 0) -> str:
        return "sku,warehouse,quantity,po_id\n" + "".join(
            f"R-{i % 40},WH-1,{0 if zero_every and i % zero_every == 0 else 1 + i % 7},PO-{i}\n"
            for i in range(2000))

    adjustments = ("sku,warehouse,delta,reason\n"
                   "R-1,WH-1,-2,broken\n"
                   "R-2,WH-1,-100000,typo\n"  # line 3: below zero, refused by the processor
                   "R-3,WH-1,5,found\n")

    def upload(text: str, kind: str, headers: dict[str, str] | None = None,
               **form: str) -> httpx.Response:
        return api.post("/v1/imports", headers={**w, **(headers or {})},
                        files={"file": (f"{kind}.csv", text.encode(), "text/csv")},
                        data={"kind": kind, **form})

    with api_server(env) as api, processor_thread(env) as running:
        bad = upload(receipts(zero_every=100) + "x,y\n", "receipts")
        assert bad.status_code == 422, bad.text
        refused = bad.json()
        assert [b["line"] for b in refused["bad_rows"]] == [
            *range(2, 2002, 100), 2002]  # every bad line, and only those
        assert refused["bad_rows"][-1]["reason"] == "2 values for 4 columns"
        assert all(b["reason"].startswith("quantity_out_of_range")
                   for b in refused["bad_rows"][:-1])
        assert published(env) == 0
        assert api.post("/v1/imports", headers=r, files={"file": ("a.csv", b"x")},
                        data={"kind": "counts"}).status_code == 403

        dry = upload(receipts(), "receipts", dry_run="true")
        assert dry.status_code == 200 and dry.json()["published"] == 0
        first = upload(receipts(), "receipts", headers={"Idempotency-Key": "grn-2026-11-22"})
        assert first.status_code == 202, first.text
        assert (first.json()["valid"], first.json()["published"]) == (2000, 2000)
        retried = upload(receipts(), "receipts", headers={"Idempotency-Key": "grn-2026-11-22"})
        assert retried.json()["import_id"] == first.json()["import_id"]
        done = progress(api, first.json()["import_id"], r)
        assert (done["applied"], done["noop"], done["rejected"], done["pending"]) == (
            2000, 0, 0, 0), done
        assert done["actor"] == "api-key:wms-upload" and done["published_at"]

        adjusted = upload(adjustments, "adjustments")
        assert adjusted.status_code == 202, adjusted.text
        outcome = progress(api, adjusted.json()["import_id"], r)
        assert (outcome["applied"], outcome["rejected"]) == (2, 1), outcome
        [rejection] = outcome["rejections"]
        assert rejection["line"] == 3 and rejection["reason"].startswith("negative_result")
        assert api.get("/v1/imports/imp_00000000000000000000", headers=r).status_code == 404
        running.check()
    want: dict[str, int] = {}
    for i in range(2000):
        want[f"R-{i % 40}@WH-1"] = want.get(f"R-{i % 40}@WH-1", 0) + 1 + i % 7
    want["R-1@WH-1"] -= 2
    want["R-3@WH-1"] += 5
    assert {k: v[0] for k, v in db_quantities(env).items()} == want  # the retry moved nothing
