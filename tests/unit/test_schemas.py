"""schemas/ is generated from the models and must not drift; the schemas accept the
events the system really carries."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from stockflow.contract.emit import order_message, output_message
from stockflow.contract.events import INPUT_MODELS, parse
from stockflow.contract.outputs import OUTPUT_MODELS, STATUS_MODELS
from stockflow.contract.schemas import INPUT_EVENTS, OUTPUT_EVENTS, documents
from stockflow.contract.topics import TopicKind, Topics
from stockflow.devtools.workload import generate
from stockflow.domain.inputs import Event
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, new_state
from tests.factories import wh
from tests.order_kit import Flow

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schema_files_match_the_models() -> None:
    expected = documents()
    on_disk = {str(p.relative_to(SCHEMAS)): p.read_text() for p in SCHEMAS.rglob("*.json")}
    stale = sorted(n for n in expected if on_disk.get(n) != expected[n])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, (
        f"schemas/ drifted from the models (stale {stale}, extra {extra}): "
        "run `.venv/bin/python -m stockflow.contract.schemas schemas`")


@functools.cache
def _validator(type_: str, direction: str = "inputs") -> Draft202012Validator:
    schema = json.loads((SCHEMAS / direction / f"{type_}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_valid_generated_input_matches_its_schema() -> None:
    wl = generate(events=3000, skus=20, warehouses=3, seed=4)
    checked = set()
    for item in wl.setup + wl.stream:
        if item.reason is None and item.type in INPUT_MODELS:
            _validator(item.type).validate(json.loads(item.value))
            checked.add(item.type)
    assert len(checked) >= 12


def test_outputs_of_the_rules_match_their_schemas() -> None:
    wl = generate(events=3000, skus=5, warehouses=2, seed=9)
    states: dict[str, object] = {}
    seen = set()
    for item in wl.setup + wl.stream:
        ev = parse(item.kind, item.key, item.value)
        if not isinstance(ev, Event):
            continue
        st = states.get(ev.key) or new_state(ev.sku, ev.warehouse, Policy())
        d = apply(st, ev, Policy())  # type: ignore[arg-type]
        states[ev.key] = d.state
        for out in d.outputs:
            msg = output_message(Topics(), ev.id, out, "2026-01-01T00:00:00+00:00")
            direction = "outputs" if out.type in OUTPUT_MODELS else "inputs"
            _validator(out.type, direction).validate(json.loads(msg.value or b""))
            seen.add(out.type)
    assert {"stock.changed", "reservation.accepted", "oversell.detected"} <= seen


@pytest.mark.parametrize("type_", sorted(OUTPUT_EVENTS))
def test_output_schema_rejects_a_missing_cause(type_: str) -> None:
    doc = {"specversion": "1.0", "id": "x", "source": "s", "type": type_,
           "time": "2026-01-01T00:00:00Z",
           "data": {"sku": "A", "warehouse": "B", "order_id": "O1"}}
    assert list(_validator(type_, "outputs").iter_errors(doc))


ORDER = {"order_id": "O1", "lines": [{"line_id": "1", "sku": "A", "quantity": 2},
                                     {"line_id": "2", "sku": "B", "quantity": 1,
                                      "warehouse": "WH-1"}],
         "strategy": "nearest", "ship_to": {"lat": 50.8, "lon": 4.3},
         "expires_at": "2026-01-01T00:30:00Z"}


@pytest.mark.parametrize(("type_", "data"), [
    ("order.requested", ORDER),
    ("order.requested", {"order_id": "O1", "lines": [{"line_id": "1", "sku": "A",
                                                      "quantity": 1}]}),
    ("order.confirm-requested", {"order_id": "O1"}),
    ("order.cancel-requested", {"order_id": "O1", "reason": "changed my mind"}),
    ("order.expired", {"order_id": "O1"}),
])
def test_order_requests_match_their_schemas(type_: str, data: dict[str, object]) -> None:
    doc = {"specversion": "1.0", "id": "x", "source": "s", "type": type_,
           "time": "2026-01-01T00:00:00Z", "data": data}
    _validator(type_).validate(doc)


@pytest.mark.parametrize("lines", [
    [], [{"line_id": "1~1", "sku": "A", "quantity": 1}],
    [{"line_id": str(i), "sku": "A", "quantity": 1} for i in range(101)],
])
def test_the_order_request_schema_refuses_what_the_model_refuses(
        lines: list[dict[str, object]]) -> None:
    doc = {"specversion": "1.0", "id": "x", "source": "s", "type": "order.requested",
           "time": "2026-01-01T00:00:00Z", "data": {"order_id": "O1", "lines": lines}}
    assert list(_validator("order.requested").iter_errors(doc))


def test_asyncapi_describes_every_topic_and_message() -> None:
    doc = json.loads((SCHEMAS / "asyncapi.json").read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(Topics().all)
    names = [f"inputs.{t}" for t in INPUT_EVENTS] + [f"outputs.{t}" for t in OUTPUT_EVENTS]
    assert {"inputs.order.requested", "outputs.order.allocated"} <= set(names)
    channels = doc["channels"]
    assert set(channels["order-requests"]["messages"]) == {
        "inputs.order.requested", "inputs.order.confirm-requested",
        "inputs.order.cancel-requested", "inputs.order.expired"}
    assert len(channels["order-status"]["messages"]) == 5
    actions = {name: op["action"] for name, op in doc["operations"].items()}
    assert actions["receive-order-requests"] == "receive"
    assert actions["send-order-status"] == "send"
    assert actions["receive-reservations"] == "receive"  # the coordinator reads them back
    for name in names:
        ref = doc["components"]["messages"][name]["payload"]["schema"]["$ref"]
        assert (SCHEMAS / ref).exists()


def test_the_coordinators_outputs_match_their_schemas() -> None:
    f = Flow((wh("W1", 1), wh("W2", 2)), {("A", "W1"): 2, ("A", "W2"): 9})
    f.request({"line_id": "1", "sku": "A", "quantity": 5})
    f.say("accepted", *f.placed())
    f.stock["A", "W2"] = 0
    f.say("released", "1~2", reason="oversell_remediation")  # nowhere else: stock_lost
    f.say("released", *f.releasing())
    g = Flow((wh("W1", 1),), {("A", "W1"): 2})
    g.request({"line_id": "1", "sku": "A", "quantity": 1})
    g.say("accepted", *g.placed())
    g.ask("order.confirm-requested")
    g.say("confirmed", "1~1")
    g.ask("order.cancel-requested", reason="returned")
    g.say("released", "1~1")
    h = Flow((wh("W1", 1), wh("W2", 2)), {("A", "W1"): 2, ("A", "W2"): 9})
    h.request({"line_id": "1", "sku": "A", "quantity": 1})
    h.say("accepted", "1~1")
    h.stock["A", "W1"] = 0
    h.say("released", "1~1", reason="oversell_remediation")
    h.say("accepted", "1~2")  # found at W2: reallocated
    seen = set()
    for d in (*f.decisions, *g.decisions, *h.decisions):
        for kind, outs in ((TopicKind.ORDERS, d.commands), (TopicKind.ORDER_STATUS, d.statuses)):
            for out in outs:
                msg = order_message(Topics(), kind, "O", out, "2026-01-01T00:00:00+00:00")
                direction = "inputs" if kind is TopicKind.ORDERS else "outputs"
                _validator(out.type, direction).validate(json.loads(msg.value or b""))
                seen.add(f"{direction}.{out.type}")
    assert seen == {"inputs.order.placed", "inputs.order.cancelled", "inputs.order.confirmed",
                    *(f"outputs.{t}" for t in STATUS_MODELS)}
