"""The API keeps its word, through a real server on the session's Kafka and Postgres: a
write route carries every field of its event and refuses what its event refuses, an
Idempotency-Key names one request, the caller is checked before the body, and an import
either publishes (with an id that resolves) or says plainly why not."""

from __future__ import annotations

import codecs
import gzip
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.contract.events import INPUT_MODELS, ORDER_INPUT_MODELS
from stockflow.contract.topics import INPUTS, TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.order_inputs import RequestedLine
from tests.factories import wh
from tests.integration.harness import make_env, processor_thread, read_topic
from tests.integration.test_api import api_server, bearer, new_key
from tests.integration.test_imports import published, run_import

# route -> (event type, fields the route fills in itself, a body giving every other field)
FULL_BODIES: list[tuple[str, str, set[str], dict[str, Any]]] = [
    ("/v1/receipts", "receipt.received", set(), {
        "sku": "F-1", "warehouse": "WH-1", "quantity": 40, "receipt_id": "GRN-1",
        "line_id": "3", "po_id": "PO-9", "unit_cost": "12.50", "currency": "EUR"}),
    ("/v1/shipments", "shipment.dispatched", set(), {
        "sku": "F-1", "warehouse": "WH-1", "quantity": 2, "shipment_id": "SH-1",
        "line_id": "1", "order_id": "O-F"}),
    ("/v1/adjustments", "stock.adjusted", set(), {
        "sku": "F-1", "warehouse": "WH-1", "delta": -1, "reason": "dropped",
        "adjustment_id": "ADJ-1"}),
    ("/v1/counts", "stock.counted", set(), {
        "sku": "F-2", "warehouse": "WH-1", "on_hand": 30, "count_id": "CNT-1"}),
    ("/v1/transfers", "transfer.dispatched", {"phase"}, {
        "phase": "dispatched", "sku": "F-2", "warehouse": "WH-1", "to_warehouse": "WH-2",
        "quantity": 5, "transfer_id": "TR-1"}),
    ("/v1/transfers", "transfer.received", {"phase"}, {
        "phase": "received", "sku": "F-2", "warehouse": "WH-2", "quantity": 5,
        "transfer_id": "TR-1"}),
]
# a whole order, every field of order.requested given
ORDER: dict[str, Any] = {
    "order_id": "O-F", "strategy": "nearest", "ship_to": {"lat": 50.5, "lon": 4.25},
    "expires_at": "2031-05-01T10:00:00+00:00",
    "lines": [{"line_id": "L1", "sku": "F-1", "quantity": 3, "warehouse": "WH-1"}]}
NOT_A_VALUE = {"not": ["a", "value"]}  # what no field of any event accepts


def _published_data(env: Any) -> dict[str, dict[str, Any]]:
    """Every event published on the input topics, by event id: its data."""
    found = {}
    for kind in (*INPUTS, TopicKind.ORDER_REQUESTS):
        for _, value, _ in read_topic(env, kind):
            doc = json.loads(value or b"{}")
            found[doc["id"]] = doc["data"]
    return found


def _same(sent: Any, got: Any) -> bool:
    if isinstance(sent, str) and sent.endswith("+00:00"):
        return datetime.fromisoformat(sent) == datetime.fromisoformat(got)
    return bool(sent == got)


def test_each_write_route_carries_and_checks_every_field_of_its_event(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "view", "read")
    w = bearer(writer)
    sent: dict[str, dict[str, Any]] = {}
    with api_server(env) as api, processor_thread(env) as running:
        for path, type_, filled, body in FULL_BODIES:
            fields = set(INPUT_MODELS[type_][1].model_fields)
            assert set(body) - filled == fields, (path, fields ^ (set(body) - filled))
            got = api.post(path, json=body, headers=w, params={"wait": 15})
            assert got.status_code == 202, (path, got.text)
            [outcome] = got.json()["outcomes"]
            assert outcome["outcome"] == "applied", (path, outcome)
            sent[outcome["event_id"]] = {k: v for k, v in body.items() if k not in filled}

            for field in body:  # every field is checked as its event checks it
                bad = api.post(path, json={**body, field: NOT_A_VALUE}, headers=w)
                assert bad.status_code == 422, (path, field, bad.text)
                assert isinstance(bad.json()["detail"], str), bad.text
            unknown = api.post(path, json={**body, "unit_kost": "1.00"}, headers=w)
            assert unknown.status_code == 422 and "unit_kost" in unknown.text, unknown.text

        # the cases users met: a cost arrives; a bad cost is refused as /v1/events does
        stock = api.get("/v1/stock/F-1@WH-1", headers=bearer(reader)).json()
        assert (Decimal(stock["unit_cost"]), stock["currency"]) == (Decimal("12.5"), "EUR"), stock
        for extra in ({"unit_cost": "NaN", "currency": "nope"}, {"unit_cost": "1.00"}):
            receipt = {"sku": "F-3", "warehouse": "WH-1", "quantity": 1, **extra}
            assert api.post("/v1/receipts", json=receipt, headers=w).status_code == 422
            event = {"type": "receipt.received", "data": {**receipt, "receipt_id": "x"}}
            assert api.post("/v1/events", json=event, headers=w).status_code == 422
        # JSON Schema's integers: 219.0 is one, 219.5, "219" and true are not; a boolean
        # is true or false, not 0
        whole = api.post("/v1/receipts", headers=w, params={"wait": 15},
                         json={"sku": "F-4", "warehouse": "WH-1", "quantity": 219.0})
        assert whole.json()["outcomes"][0]["outcome"] == "applied", whole.text
        for quantity in (219.5, "219", True):
            assert api.post("/v1/receipts", headers=w, json={
                "sku": "F-4", "warehouse": "WH-1", "quantity": quantity}).status_code == 422

        # a whole order carries every field of order.requested, its lines every field of
        # a requested line, nested unknown fields refused too
        requested = ORDER_INPUT_MODELS["order.requested"][1].model_fields
        assert set(ORDER) == set(requested)
        assert set(ORDER["lines"][0]) == set(RequestedLine.model_fields)
        with env.db() as conn:
            warehouses_db.add(conn, wh("WH-1", 1), actor="test")
            warehouses_db.add(conn, wh("WH-OFF", 1, active=False), actor="test")
        order = api.post("/v1/orders", headers=w, json=ORDER)
        assert order.status_code == 202, order.text
        assert order.json()["status"] == "pending"  # no ?wait
        sent[order.json()["event_id"]] = ORDER
        line = ORDER["lines"][0]
        for bad_order in ([{**ORDER, field: NOT_A_VALUE} for field in ORDER]
                          + [{**ORDER, "lines": [{**line, field: NOT_A_VALUE}]}
                             for field in line]
                          + [{**ORDER, "lines": [{**line, "wharehouse": "WH-1"}]},
                             {**ORDER, "ship_to": {"lat": 1.0, "lon": 2.0, "alt": 3}},
                             {**ORDER, "ship_to": None},  # nearest needs it
                             {**ORDER, "lines": [line, line]},  # a line id twice
                             {**ORDER, "lines": [{**line, "line_id": "L~1"}]}]):
            bad = api.post("/v1/orders", headers=w, json=bad_order)
            assert bad.status_code == 422, (bad_order, bad.text)
        for pin, said in (("NOPE", "not a registered warehouse"), ("WH-OFF", "inactive")):
            refused = api.post("/v1/orders", headers=w, json={
                **ORDER, "order_id": "O-P", "lines": [{**line, "warehouse": pin}]})
            assert refused.status_code == 422 and said in refused.text, refused.text
        assert api.post("/v1/orders/O-F/confirm", headers=w).status_code == 202
        assert api.post("/v1/orders/O-F/cancel", headers=w,
                        json={"reason": "changed", "extra": 1}).status_code == 422
        running.check()

    data = _published_data(env)
    for event_id, given in sent.items():
        arrived = data[event_id]
        assert all(_same(v, arrived.get(k)) for k, v in given.items()), (given, arrived)


def test_an_idempotency_key_names_one_request(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "view", "read")
    w = bearer(writer)

    def receipt(key: str, **body: Any) -> httpx.Response:
        return api.post("/v1/receipts", params={"wait": 15},
                        headers={**w, "Idempotency-Key": key}, json=body)

    with api_server(env) as api, processor_thread(env) as running:
        first = receipt("k-1", sku="I-1", warehouse="WH-1", quantity=40)
        assert first.json()["outcomes"][0]["outcome"] == "applied", first.text
        again = receipt("k-1", warehouse="WH-1", sku="I-1", quantity=40)  # same, reordered
        assert again.status_code == 202 and again.json()["event_ids"] == \
            first.json()["event_ids"]
        for other in ({"sku": "I-1", "warehouse": "WH-1", "quantity": 7},
                      {"sku": "I-2", "warehouse": "WH-1", "quantity": 40}):
            refused = receipt("k-1", **other)
            assert refused.status_code == 422, refused.text
            assert "Idempotency-Key 'k-1' was used before" in refused.json()["detail"]
        elsewhere = api.post("/v1/shipments", headers={**w, "Idempotency-Key": "k-1"},
                             json={"sku": "I-1", "warehouse": "WH-1", "quantity": 40})
        assert elsewhere.status_code == 422, elsewhere.text
        upload = api.post("/v1/imports", headers={**w, "Idempotency-Key": "k-1"},
                          files={"file": ("c.csv", b"sku,warehouse,on_hand\nI-1,WH-1,5\n")},
                          data={"kind": "counts"})
        assert upload.status_code == 422, upload.text
        assert api.get("/v1/stock/I-1@WH-1", headers=bearer(reader)).json()["on_hand"] == 40
        assert api.get("/v1/stock/I-2@WH-1", headers=bearer(reader)).status_code == 404

        # imports: one mechanism, the same answer
        def counts(key: str, text: str) -> httpx.Response:
            return api.post("/v1/imports", headers={**w, "Idempotency-Key": key},
                            files={"file": ("c.csv", text.encode())}, data={"kind": "counts"})

        done = counts("file-1", "sku,warehouse,on_hand\nI-3,WH-1,5\n")
        assert done.status_code == 202, done.text
        assert counts("file-1", "sku,warehouse,on_hand\nI-3,WH-1,5\n").status_code == 202
        changed = counts("file-1", "sku,warehouse,on_hand\nI-3,WH-1,6\n")
        assert changed.status_code == 422 and "was used" in changed.json()["detail"]
        running.check()


def test_the_caller_is_checked_before_the_body(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "view", "read")
    broken = b'{"sku": "A", "warehouse": '  # not JSON
    routes = ["/v1/receipts", "/v1/shipments", "/v1/adjustments", "/v1/counts",
              "/v1/transfers", "/v1/orders", "/v1/events"]
    with api_server(env) as api:
        for path in routes:
            for headers, code in (({}, 401), (bearer("sfk_nope"), 401),
                                  (bearer(reader), 403), (bearer(writer), 422)):
                got = api.post(path, content=broken, headers={
                    **headers, "Content-Type": "application/json"})
                assert got.status_code == code, (path, headers, got.text)
        for headers, code in (({}, 401), (bearer(reader), 403)):
            got = api.post("/v1/imports", headers=headers, content=b"--x\r\nbroken",
                           params={"wait": "soon"})
            assert got.status_code == code, got.text
        # reads too: a bad query parameter is not looked at before the caller
        assert api.get("/v1/stock", params={"limit": "many"}).status_code == 401
        assert api.get("/v1/stock", params={"limit": "many"},
                       headers=bearer(writer)).status_code == 403
        # headers past 16 KiB are refused before anything else
        for size in (17 * 1024, 1024 * 1024):
            big = api.get("/v1/stock", headers={**bearer(reader), "X-Note": "n" * size})
            assert big.status_code == 431, big.text
        assert api.get("/v1/stock", headers={**bearer(reader), "X-Note": "n" * 8000}
                       ).status_code == 200


def test_an_import_publishes_or_says_why_not(services: LocalServices, unique: str,
                                             tmp_path: Any) -> None:
    env = make_env(services, unique)
    _, writer = new_key(env, "wms", "write")
    _, reader = new_key(env, "view", "read")
    header = "sku,warehouse,on_hand\n"
    undecodable = {
        "latin-1 header": ("sku,warehouse,on_hand,remarqu\xe9\n".encode("latin-1"),
                           "not UTF-8: byte 0xE9 in the header's column 4"),
        "gzip": (gzip.compress(header.encode()), "gzip-compressed"),
        "utf-16 without a byte-order mark": (header.encode("utf-16-le"), "NUL bytes"),
        "binary": (bytes(range(256)), "NUL bytes"),
        "latin-1 value": (f"{header}caf\xe9,WH-1,3\n".encode("latin-1"),
                          '"line":2,"reason":"not UTF-8"'),
    }

    def upload(data: bytes, **form: str) -> httpx.Response:
        return api.post("/v1/imports", headers=bearer(writer), files={"file": ("f.csv", data)},
                        data={"kind": "counts", **form})

    with api_server(env) as api, processor_thread(env) as running:
        for name, (data, says) in undecodable.items():
            got = upload(data)
            assert got.status_code == 422, (name, got.text)
            assert says in got.text, (name, got.text)
        for data, form, says in (
                (header.encode(), {}, "no data rows"),
                (f"{header}A,WH-1,-1\nB,WH-1,x\n".encode(), {"allow_partial": "true"},
                 "all 2 rows are bad")):
            got = upload(data, **form)
            assert got.status_code == 422, got.text
            assert got.json()["import_id"] is None and says in got.json()["detail"], got.text
        dry = upload(f"{header}A,WH-1,1\n".encode(), dry_run="true")
        assert dry.status_code == 200 and dry.json()["import_id"] is None, dry.text
        assert published(env) == 0

        # UTF-16 with its byte-order mark is what spreadsheets call Unicode text: taken
        sixteen = upload(codecs.BOM_UTF16_LE + f"{header}U-1,WH-1,4\n".encode("utf-16-le"))
        assert sixteen.status_code == 202, sixteen.text
        import_id = sixteen.json()["import_id"]
        assert api.get(f"/v1/imports/{import_id}", headers=bearer(reader)).status_code == 200
        running.check()

    latin = tmp_path / "latin.csv"
    latin.write_bytes(undecodable["latin-1 header"][0])
    cli = run_import(env, str(latin), "--kind", "counts")
    assert cli.returncode == 2 and "not UTF-8: byte 0xE9 in the header's column 4" \
        in cli.stderr, cli.stderr
