"""The console (`/console`) in Debian's headless Chromium, through a real uvicorn server on
the session's Kafka and Postgres: sign-in, the overview updating by itself, search, a
key's page and chart, its kept forecast and reorder suggestion; and its locks: escaped
text, cross-site posts refused, sessions that end at sign-out and expiry, no token in any
page or log."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from stockflow.adapters.db import forecasts
from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.publisher import Publisher
from stockflow.devtools.localenv import LocalServices
from stockflow.entrypoints.app import build_coordinator
from tests.factories import wh, workbook
from tests.integration.browser import chromium, screenshot
from tests.integration.harness import Env, make_env, processor_thread, wait_drained
from tests.integration.test_api import api_server, bearer, cli, new_key
from tests.integration.test_webhooks import KEY

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def until(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """`check()`'s first truthy answer within `timeout` seconds; a page reloading under
    it (the overview refreshes itself) is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if found := check():
                return found
        except WebDriverException:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.2)


def _write(api: httpx.Client, token: str, path: str, **body: Any) -> None:
    got = api.post(path, json=body, headers=bearer(token), params={"wait": 15})
    assert got.status_code == 202, got.text
    assert [o["outcome"] for o in got.json()["outcomes"]] == ["applied"], got.text


def _seed(api: httpx.Client, writer: str) -> None:
    for sku, warehouse, units in (("CON-1", "WH-1", 120), ("CON-2", "WH-1", 8),
                                  ("OTHER-1", "WH-2", 4000)):
        _write(api, writer, "/v1/receipts", sku=sku, warehouse=warehouse, quantity=units)
    _write(api, writer, "/v1/shipments", sku="CON-2", warehouse="WH-1", quantity=8)
    _write(api, writer, "/v1/adjustments", sku="CON-1", warehouse="WH-1", delta=-3,
           reason=HOSTILE)


def _submit(browser: WebDriver, button: WebElement) -> None:
    """Click `button` and wait for the page it leads to (the old one gone stale)."""
    old = browser.find_element(By.TAG_NAME, "html")
    button.click()

    def replaced(_: WebDriver) -> bool:
        # chromium says so as a stale element, or as a node of no document any more
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    wait = WebDriverWait(browser, 30)
    wait.until(replaced)
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


def _sign_in(browser: WebDriver, base: str, token: str, then: str = "/console") -> None:
    browser.get(base + then)
    assert "/console/sign-in" in browser.current_url  # a page needs a session
    browser.find_element(By.ID, "token").send_keys(token)
    _submit(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert "/console/sign-in" not in browser.current_url


def _text(browser: WebDriver, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def test_sign_in_overview_search_and_a_keys_page(services: LocalServices,
                                                 unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "console-writer", "write")
    _, reader = new_key(env, "merchant", "read")
    with api_server(env, STOCKFLOW_CONSOLE_REFRESH="2") as api, \
            processor_thread(env) as running, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _seed(api, writer)
        browser.get(base + "/console")
        browser.find_element(By.ID, "token").send_keys("sfk_not_a_key")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        assert "not a valid API key" in _text(browser, ".error")
        screenshot(browser, "sign-in-refused")

        _sign_in(browser, base, reader)
        # the overview reloads itself every 2 s: read it whole, between reloads
        until(lambda: "merchant" in _text(browser, "form.who") and all(
            w in _text(browser, "#warehouses tbody") for w in ("WH-1", "WH-2"))
            and "CON-2@WH-1" in _text(browser, "#critical"), what="the overview")  # out of stock
        until(lambda: screenshot(browser, "overview", retry=True), what="a screenshot")

        # the overview follows the stock by itself
        _write(api, writer, "/v1/receipts", sku="NEW-1", warehouse="WH-3", quantity=77)
        until(lambda: "WH-3" in _text(browser, "#warehouses tbody"), 20,
              "the overview to show a new warehouse")

        # search by SKU prefix, then open a key
        browser.get(base + "/console/stock")  # not a click: the overview may be reloading
        browser.find_element(By.NAME, "sku").send_keys("CON")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form.filters button"))
        listed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#stock tbody td a")]
        assert listed == ["CON-1@WH-1", "CON-2@WH-1"]
        screenshot(browser, "stock")
        _submit(browser, browser.find_element(By.LINK_TEXT, "CON-1@WH-1"))
        assert "117" in _text(browser, "#quantities")  # 120 received, 3 adjusted away
        chart = browser.find_element(By.CSS_SELECTOR, "svg.chart")
        assert len(chart.find_elements(By.TAG_NAME, "path")) == 3  # on hand, available, reserved
        # a hostile reason is text on the page, never markup
        assert HOSTILE in _text(browser, "#ledger")
        assert browser.title != "pwned" and not browser.find_elements(
            By.CSS_SELECTOR, "#ledger img, #ledger script")
        assert "console-writer" in _text(browser, "#ledger")  # who did it
        assert not browser.find_elements(  # a read-only key sees no write action
            By.CSS_SELECTOR, "details.corrections, main form[method=post]")
        screenshot(browser, "key")

        running.check()

    # on a phone every page fits its width (tables scroll inside their frame)
    with api_server(env) as api, chromium(phone=True) as phone:
        base = str(api.base_url).rstrip("/")
        _sign_in(phone, base, reader)
        for name, path in (("overview", "/console"), ("stock", "/console/stock?sku=CON"),
                           ("key", "/console/keys/CON-1@WH-1"), ("alerts", "/console/alerts"),
                           ("reports", "/console/reports")):
            phone.get(base + path)
            assert phone.execute_script("return window.innerWidth") == 390
            until(lambda: phone.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"),
                5, f"{path} to fit a phone's width")
            until(partial(screenshot, phone, f"phone-{name}", retry=True), what="a screenshot")


def _history(env: Env, sku: str, days: int, left: int) -> None:
    """`days` days of a weekly pattern of shipments of `sku` at WH-1 before today, from a
    receipt that leaves `left` units on hand."""
    now, noise = datetime.now(UTC), random.Random(3)
    shipped = [18 + 8 * ((d % 7) in (4, 5)) + noise.randint(-6, 6) for d in range(days)]
    with Publisher(env.settings) as pub:
        pub.publish("receipt.received", {"sku": sku, "warehouse": "WH-1", "receipt_id": "r0",
                                         "quantity": sum(shipped) + left},
                    time=now - timedelta(days=days + 1))
        pub.flush()
        wait_drained(env)  # the stock there before its shipments (another topic)
        for d, units in enumerate(shipped):
            pub.publish("shipment.dispatched", {"sku": sku, "warehouse": "WH-1",
                                                "shipment_id": f"s{d}", "quantity": units},
                        time=now - timedelta(days=days - d, hours=2))
    wait_drained(env)


def test_a_keys_forecast_and_reorder_suggestion(services: LocalServices, unique: str) -> None:
    """The forecast and suggestion the last `stockflow forecast` run kept, on the key's
    page: in words, with its targets and a chart of the forecast inside its intervals;
    stale once the stock moves; an empty state that says how to make one."""
    env = make_env(services, unique)
    _, writer = new_key(env, "planner", "write")
    _, reader = new_key(env, "merchant", "read")
    with api_server(env) as api, processor_thread(env) as running, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _history(env, "FC-1", 100, left=120)
        _write(api, writer, "/v1/receipts", sku="FC-2", warehouse="WH-1", quantity=5)
        cli(env, "forecast", "--all", "--days", "100", "--publish", "--workers", "1")
        with env.db() as conn:
            kept = forecasts.kept(conn, ["FC-1@WH-1", "FC-2@WH-1"])
        assert set(kept) == {"FC-1@WH-1"}  # FC-2 has no history to learn from
        k = kept["FC-1@WH-1"]
        assert k.position == 120 and k.suggested_quantity > 0

        _sign_in(browser, base, reader, "/console/keys/FC-1@WH-1")
        assert _text(browser, "#suggestion").startswith(
            f"Order {k.suggested_quantity:,} units: position 120 is below the reorder point "
            f"{k.reorder_point:,}; order up to {k.order_up_to:,}.")
        facts = _text(browser, "#forecast-facts")
        for told in (f"{k.as_of:%a %Y-%m-%d} (UTC day), made ", " UTC", k.model,
                     "service level 95%", "lead time 7 days", "a review every 7 days",
                     "a run over every key, 1 key planned; published as reorder.suggested",
                     "is 10; stockflow forecast --apply sets it"):
            assert told in facts, told
        assert not browser.find_elements(By.CSS_SELECTOR, "#forecast .stale")
        chart = browser.find_element(By.CSS_SELECTOR, "svg#forecast-chart")
        assert len(chart.find_elements(By.CSS_SELECTOR, "path.interval")) == 2  # 80% and 95%
        assert len(chart.find_elements(By.CSS_SELECTOR, "path.forecast")) == 1
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.demand")) == 28
        screenshot(browser, "key-forecast")

        # the stock moves: the page says the suggestion may be out of date
        _write(api, writer, "/v1/shipments", sku="FC-1", warehouse="WH-1", quantity=4)
        browser.get(base + "/console/keys/FC-1@WH-1")
        assert "changed 1 time since this forecast was made" in _text(browser, "#forecast")
        # a key no run forecast: how to make one
        browser.get(base + "/console/keys/FC-2@WH-1")
        assert "stockflow forecast --all" in _text(browser, "#no-forecast")
        assert not browser.find_elements(By.CSS_SELECTOR, "svg#forecast-chart")
        running.check()
        # on a phone the suggestion, its facts and its chart fit the screen's width
        with chromium(phone=True) as phone:
            _sign_in(phone, base, reader, "/console/keys/FC-1@WH-1")
            assert phone.execute_script("return window.innerWidth") == 390
            until(lambda: phone.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"),
                5, "the forecast to fit a phone's width")
            until(partial(screenshot, phone, "phone-key-forecast", retry=True),
                  what="a screenshot")


def test_orders_and_alerts(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "checkout", "write")
    _, reader = new_key(env, "merchant", "read")
    with env.db() as conn:
        warehouses_db.add(conn, wh("WH-1", 1), actor="test")
        warehouses_db.add(conn, wh("WH-2", 2), actor="test")
    with api_server(env) as api, processor_thread(env) as running, \
            processor_thread(env, build_coordinator), chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _write(api, writer, "/v1/receipts", sku="ORD-1", warehouse="WH-1", quantity=3)
        _write(api, writer, "/v1/receipts", sku="ORD-1", warehouse="WH-2", quantity=5)
        order = api.post("/v1/orders", params={"wait": 15}, headers=bearer(writer), json={
            "order_id": "O-77", "lines": [{"line_id": "1", "sku": "ORD-1", "quantity": 6}]})
        assert order.json()["status"] == "allocated", order.text
        _sign_in(browser, base, reader, "/console/orders")
        assert "O-77" in _text(browser, "#orders") and "allocated" in _text(browser, "#orders")
        screenshot(browser, "orders")
        _submit(browser, browser.find_element(By.LINK_TEXT, "O-77"))
        parts = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#parts tbody tr")]
        assert len(parts) == 2 and all("ORD-1" in p for p in parts)  # split over two warehouses
        assert "order.allocated" in _text(browser, "#history")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#lines tbody tr")) == 2
        screenshot(browser, "order")
        browser.get(base + "/console/orders/NOPE")
        assert "No order NOPE is known" in _text(browser, "main")

        browser.get(base + "/console/alerts")
        listed = _text(browser, "#alerts")  # 6 of 8 units reserved: both keys low
        assert "ORD-1@WH-1" in listed and "out of stock" in listed
        screenshot(browser, "alerts")
        running.check()


def test_dead_letters_inspected_and_redriven(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, admin = new_key(env, "ops-lead", "admin")
    _, reader = new_key(env, "merchant", "read")
    with api_server(env) as api, processor_thread(env) as running, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        refused = api.post("/v1/adjustments", params={"wait": 15}, headers=bearer(writer),
                           json={"sku": "DLQ-1", "warehouse": "WH-1", "delta": -4,
                                 "reason": "picked before the receipt was booked"})
        assert refused.json()["outcomes"][0]["outcome"] == "rejected", refused.text
        _sign_in(browser, base, reader, "/console/dead-letters")
        rows = until(lambda: browser.find_elements(By.CSS_SELECTOR, "#dead-letters tbody tr"),
                     what="the dead letter")
        assert "negative result" in rows[0].text and "DLQ-1@WH-1" in rows[0].text
        screenshot(browser, "dead-letters")
        _submit(browser, rows[0].find_element(By.TAG_NAME, "a"))
        assert "picked before the receipt was booked" in _text(browser, "#original")
        assert not browser.find_elements(By.CSS_SELECTOR, "main form")  # read: no re-drive
        place = browser.current_url.rsplit("/dead-letters/", 1)[1]

        # the cause fixed (the receipt booked), an admin re-drives it: applied this time
        _write(api, writer, "/v1/receipts", sku="DLQ-1", warehouse="WH-1", quantity=10)
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form.who button"))
        assert browser.current_url.endswith("/console/sign-in")  # signed out
        _sign_in(browser, base, admin, f"/console/dead-letters/{place}")
        screenshot(browser, "dead-letter")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "main form button"))
        assert "Sent back to" in _text(browser, "#redriven")
        def stock() -> dict[str, Any]:
            return dict(api.get("/v1/stock/DLQ-1@WH-1", headers=bearer(reader)).json())

        until(lambda: stock()["on_hand"] == 6, what="the re-driven adjustment")
        assert stock()["version"] == 2
        running.check()


def test_webhooks_shown_without_their_secrets_and_managed_by_an_admin(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, admin = new_key(env, "ops-lead", "admin")
    _, reader = new_key(env, "merchant", "read")
    added = subprocess.run(
        [sys.executable, "-m", "stockflow", "webhooks", "add",
         "http://127.0.0.1:9/hooks/receiver-token-4711", "--events", "stock.*",
         "--description", HOSTILE],
        env={**os.environ, **env.env_vars, "STOCKFLOW_WEBHOOK_ALLOW_HTTP": "true",
             "STOCKFLOW_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8", "STOCKFLOW_SECRET_KEY": KEY},
        capture_output=True, text=True, timeout=60, check=True).stdout
    endpoint_id, first_secret = added.split()[1], added.split()[3]
    with api_server(env, STOCKFLOW_SECRET_KEY=KEY) as api, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _sign_in(browser, base, reader, "/console/webhooks")
        listed = _text(browser, "#endpoints")
        assert endpoint_id in listed and "http://127.0.0.1:9/…" in listed
        assert HOSTILE in listed  # the description is text
        screenshot(browser, "webhooks")
        _submit(browser, browser.find_element(By.LINK_TEXT, endpoint_id))
        assert not browser.find_elements(By.CSS_SELECTOR, "main form")  # read: no actions
        assert "receiver-token-4711" not in browser.page_source
        assert first_secret not in browser.page_source
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form.who button"))

        _sign_in(browser, base, admin, f"/console/webhooks/{endpoint_id}")
        screenshot(browser, "webhook")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=rotate] button"))
        rotated = _text(browser, "#secret")
        assert rotated.startswith("whsec_") and rotated != first_secret
        browser.get(base + f"/console/webhooks/{endpoint_id}")
        assert rotated not in browser.page_source  # shown once
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=state] button"))
        assert "disabled by ops-lead" in _text(browser, "#facts")
        browser.find_element(By.ID, "since").send_keys("2026-01-01")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=replay] button"))
        assert _text(browser, "#done") == "0 deliveries queued again."
        browser.find_element(By.ID, "since").send_keys("yesterday")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=replay] button"))
        assert "Nothing was queued" in _text(browser, ".error")


def test_reports_with_charts_and_downloads(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "merchant", "read")
    with api_server(env) as api, processor_thread(env) as running, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _seed(api, writer)
        _write(api, writer, "/v1/receipts", sku="CON-1", warehouse="WH-1", quantity=10,
               unit_cost="2.50", currency="EUR")
        _sign_in(browser, base, reader, "/console/reports")
        assert [r.text.split()[0] for r in browser.find_elements(
            By.CSS_SELECTOR, "#report tbody tr")] == ["WH-1", "WH-2"]
        loaded = "return document.querySelector('img.chart').naturalWidth"
        until(lambda: browser.execute_script(loaded) >= 1200, what="the stock chart")
        screenshot(browser, "report-stock")
        for tab, expect in (("Movements", "receipt.received"), ("Valuation", "EUR")):
            _submit(browser, browser.find_element(By.LINK_TEXT, tab))
            assert expect in _text(browser, "#report"), tab
            until(lambda: browser.execute_script(loaded) >= 1200, what=f"the {tab} chart")
            screenshot(browser, f"report-{tab.lower()}")
        cookie = browser.get_cookie("stockflow_console")
        assert cookie is not None
        got = httpx.get(base + "/console/reports/report.csv?report=stock",
                        cookies={"stockflow_console": cookie["value"]})
        assert got.text.splitlines()[0].startswith("warehouse,keys,on_hand")
        assert len(got.text.splitlines()) == 3
        running.check()


def test_an_admin_makes_and_revokes_a_persons_key(services: LocalServices,
                                                  unique: str) -> None:
    env = make_env(services, unique)
    _, admin = new_key(env, "ops-lead", "admin")
    with api_server(env) as api, chromium() as browser, chromium() as alices:
        base = str(api.base_url).rstrip("/")
        _sign_in(browser, base, admin, "/console/admin")
        browser.find_element(By.ID, "name").send_keys(HOSTILE[:100])
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=keys] button"))
        assert HOSTILE[:100] in _text(browser, "#keys")  # a name is text, never markup
        browser.find_element(By.ID, "name").send_keys("alice")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=keys] button"))
        token = _text(browser, "#made code")
        assert token.startswith("sfk_") and "alice" in _text(browser, "#keys")
        assert browser.title != "pwned"
        screenshot(browser, "admin")
        browser.get(base + "/console/admin")
        assert token not in browser.page_source  # shown once

        _sign_in(alices, base, token)
        assert "alice" in _text(alices, "form.who")
        assert not alices.find_elements(By.LINK_TEXT, "Admin")
        alices.get(base + "/console/admin")
        assert "Not allowed" in _text(alices, "h1")  # a page in words, not JSON

        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#keys tbody tr")
                   if "alice" in r.text)
        _submit(browser, row.find_element(By.TAG_NAME, "button"))
        assert "revoked" in _text(browser, "#done")

        def signed_out() -> bool:
            alices.get(base + "/console")
            return "/console/sign-in" in alices.current_url

        until(signed_out, 15, "the revoked key's session to end")

        # warehouses: register one, change it, read who changed what
        browser.get(base + "/console/admin")
        add = browser.find_element(By.ID, "add-warehouse")
        add.find_element(By.ID, "code").send_keys("WH-LEJ")
        add.find_element(By.ID, "wh-name").send_keys(HOSTILE[:100])
        add.find_element(By.ID, "location").send_keys("51.34,12.37")
        _submit(browser, add.find_element(By.TAG_NAME, "button"))
        assert browser.current_url.endswith("/console/admin/warehouses/WH-LEJ")
        assert HOSTILE[:100] in _text(browser, "h1") and browser.title != "pwned"

        def change(field: str, value: str, active: bool = True) -> None:
            form = browser.find_element(By.ID, "change")
            form.find_element(By.ID, field).clear()
            form.find_element(By.ID, field).send_keys(value)
            box = form.find_element(By.NAME, "active")
            if box.is_selected() != active:
                box.click()
            _submit(browser, form.find_element(By.TAG_NAME, "button"))

        change("location", "north")
        assert "Nothing changed" in _text(browser, ".error")
        change("priority", "5", active=False)
        assert _text(browser, "#done") == "Saved."
        history = _text(browser, "#history")
        assert "changed: priority 100 -> 5; active yes -> no" in history
        assert "api-key:ops-lead" in history and "added: name" in history
        screenshot(browser, "warehouse")
        with env.db() as conn:
            registered = warehouses_db.listed(conn, inactive=True)
        assert [(r.warehouse.code, r.warehouse.priority, r.warehouse.active)
                for r in registered] == [("WH-LEJ", 5, False)]


def test_an_import_shows_every_bad_row_then_publishes(services: LocalServices, unique: str,
                                                     tmp_path: Path) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "warehouse-lead", "write")
    _, reader = new_key(env, "merchant", "read")
    # a file's name is text a person chose: shown, never run (no "/" in a file's name)
    bad = tmp_path / '<img src=x onerror=alert(1)>counts.csv'
    bad.write_text("sku,warehouse,on_hand\nIMP-1,WH-1,40\nIMP-2,WH-1,-5\nIMP-3,WH-1,9\n")
    good = tmp_path / "counts-fixed.xlsx"  # fixed in Excel, and uploaded as a workbook
    good.write_bytes(workbook([["sku", "warehouse", "on_hand"], ["IMP-1", "WH-1", 40],
                               ["IMP-2", "WH-1", 5], ["IMP-3", "WH-1", 9]]))
    with api_server(env, STOCKFLOW_CONSOLE_REFRESH="1") as api, \
            processor_thread(env) as running, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _sign_in(browser, base, writer, "/console/imports")

        def upload(path: Path, action: str) -> None:
            Select(browser.find_element(By.ID, "kind")).select_by_value("counts")
            browser.find_element(By.ID, "file").send_keys(str(path))
            _submit(browser, browser.find_element(By.CSS_SELECTOR, f"button[value={action}]"))

        upload(bad, "publish")
        assert "Nothing was published" in _text(browser, "#checked")
        assert _text(browser, "#checked h2") == bad.name
        assert not browser.find_elements(By.CSS_SELECTOR, "main img")
        rows = browser.find_elements(By.CSS_SELECTOR, "#bad-rows tbody tr")
        assert [r.text.split(" ", 1)[0] for r in rows] == ["3"]  # the one bad line
        assert "on_hand" in rows[0].text
        screenshot(browser, "import-refused")
        with env.db() as conn:
            assert conn.execute("SELECT count(*) FROM imports").fetchone() == (0,)

        upload(good, "check")
        assert "All 3 rows are valid" in _text(browser, "#valid")
        upload(good, "publish")
        until(lambda: browser.find_elements(By.ID, "done"), 30, "the import to be applied")
        assert _text(browser, "#progress").split()[:4] == ["3", "rows", "3", "applied"]
        screenshot(browser, "import-applied")
        browser.get(base + "/console/imports")
        assert "counts-fixed.xlsx" in _text(browser, "#recent")  # to follow it again later
        screenshot(browser, "imports")
        browser.get(base + "/console/keys/IMP-2@WH-1")
        assert _text(browser, "#quantities").startswith("5\non hand")
        assert "warehouse-lead" in _text(browser, "#ledger")

        def correct(delta: str, reason: str) -> str:
            browser.find_element(By.CSS_SELECTOR, "details.corrections summary").click()
            browser.find_element(By.ID, "delta").send_keys(delta)
            browser.find_element(By.ID, "reason").send_keys(reason)
            _submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action$=adjust] button"))
            return _text(browser, "#outcome")

        assert correct("-2", "dropped") == "Your correction was applied."
        assert _text(browser, "#quantities").startswith("3\non hand")
        assert correct("-100", "typo").startswith("Your correction was refused: negative_result")
        assert _text(browser, "#quantities").startswith("3\non hand")
        screenshot(browser, "key-corrected")

        # the thresholds too: 3 available under a reorder point of 20 is low stock
        browser.find_element(By.CSS_SELECTOR, "details.corrections summary").click()
        for field, value in (("reorder_point", "20"), ("safety_stock", "1")):
            browser.find_element(By.ID, field).clear()
            browser.find_element(By.ID, field).send_keys(value)
        _submit(browser, browser.find_element(By.CSS_SELECTOR,
                                              "form[action$=thresholds] button"))
        assert _text(browser, "#outcome") == "Your correction was applied."
        figures = _text(browser, "#quantities")
        assert "20\nreorder point" in figures and "1\nsafety stock" in figures
        assert _text(browser, ".sev") == "low"
        running.check()

    with api_server(env) as api, chromium() as browser:
        base = str(api.base_url).rstrip("/")
        _sign_in(browser, base, reader, "/console/imports")
        assert "can look but not import" in _text(browser, "main")
        assert "counts-fixed.xlsx" in _text(browser, "#recent")
        assert not browser.find_elements(By.CSS_SELECTOR, "main form")  # no write action
        csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
        cookie = browser.get_cookie("stockflow_console")
        assert cookie is not None
        refused = httpx.post(base + "/console/imports", data={"csrf": csrf, "kind": "counts"},
                             files={"file": ("c.csv", good.read_bytes())},
                             cookies={"stockflow_console": cookie["value"]})
        assert refused.status_code == 403  # nor by posting the form by hand


def test_sessions_end_and_cross_site_posts_are_refused(services: LocalServices,
                                                       unique: str) -> None:
    env = make_env(services, unique)
    _, reader = new_key(env, "merchant", "read")
    with api_server(env, STOCKFLOW_CONSOLE_IDLE_TIMEOUT="3") as api:
        page = api.get("/console")
        assert page.status_code == 303 and page.headers["location"].startswith(
            "/console/sign-in")
        sign_in = api.get("/console/sign-in")
        policy = sign_in.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script" not in policy
        assert sign_in.headers["x-frame-options"] == "DENY"
        cross = api.post("/console/sign-in", data={"token": reader},
                         headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403

        signed = api.post("/console/sign-in", data={"token": reader})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert reader not in cookie
        overview = api.get("/console")
        assert overview.status_code == 200 and reader not in overview.text
        csrf = overview.text.split('name="csrf" value="')[1].split('"')[0]

        # sign-out from another site, or without the page's token: refused
        assert api.post("/console/sign-out", data={"csrf": csrf},
                        headers={"Origin": "https://evil.example"}).status_code == 403
        assert api.post("/console/sign-out", data={"csrf": "guess"}).status_code == 403
        stolen = dict(api.cookies)
        assert api.post("/console/sign-out", data={"csrf": csrf}).status_code == 303
        after = httpx.get(str(api.base_url).rstrip("/") + "/console", cookies=stolen)
        assert after.status_code == 303  # the old cookie is worth nothing now

        # an unused session expires
        api.post("/console/sign-in", data={"token": reader})
        assert api.get("/console").status_code == 200
        time.sleep(4)
        assert api.get("/console").status_code == 303
