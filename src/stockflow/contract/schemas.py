"""JSON Schemas (draft 2020-12) of every event and an AsyncAPI 3 document of every topic,
generated from the pydantic models. `python -m stockflow.contract.schemas [DIR]` writes them
(default `schemas/`); a test fails when the files drift from the models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stockflow import __version__
from stockflow.contract.events import INPUT_MODELS, ORDER_INPUT_MODELS, Reason
from stockflow.contract.outputs import OUTPUT_MODELS, STATUS_MODELS
from stockflow.contract.topics import COORDINATOR_INPUTS, INPUTS, OUTPUTS, TopicKind, Topics
from stockflow.domain.inputs import EARLIEST, LATEST

__all__ = ["asyncapi", "documents", "event_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
KEY_PATTERN = "^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9._-]{1,64}$"
DLQ_HEADERS = ("reason", "message", "topic", "partition", "offset")
REASONS = [r.value for r in Reason]
# Every event by direction: the stock processor's and the order coordinator's. The reservation
# events the coordinator reads back are documented once, as the processor's outputs.
INPUT_EVENTS = {**INPUT_MODELS, **{t: (kind, model) for t, (kind, model)
                                   in ORDER_INPUT_MODELS.items()
                                   if kind is TopicKind.ORDER_REQUESTS}}
OUTPUT_EVENTS = {**OUTPUT_MODELS, **STATUS_MODELS}


def event_schema(type_: str, direction: str) -> dict[str, Any]:
    """The CloudEvents envelope of `type_` ("inputs" or "outputs") with its data model.
    (reservation.expired is both: the sweeper's input and a reservation output.)"""
    kind, model = (INPUT_EVENTS if direction == "inputs" else OUTPUT_EVENTS)[type_]
    data = model.model_json_schema(mode="validation")
    defs = data.pop("$defs", {})
    data["additionalProperties"] = True  # unknown data fields are ignored
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"urn:stockflow:{direction}:{type_}",
        "title": type_,
        "description": f"CloudEvents 1.0 (structured JSON) event on {kind.value}",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1, "maxLength": 128,
                   "description": "unique per event; the de-duplication key"},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": type_},
            "time": {"type": "string", "format": "date-time",
                     "formatMinimum": EARLIEST.isoformat(), "formatMaximum": LATEST.isoformat(),
                     "description": "in UTC at or after formatMinimum and before formatMaximum"},
            "subject": {"type": "string", "description": (
                "the order_id when present" if kind in _ORDERS_ONLY
                else "SKU@WAREHOUSE when present")},
            "datacontenttype": {"type": "string"},
            "data": data,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


_ORDERS_ONLY = (TopicKind.ORDER_REQUESTS, TopicKind.ORDER_STATUS)  # the coordinator's own
_BY_ORDER = (TopicKind.RESERVATIONS, *_ORDERS_ONLY)


def _key_schema(kind: TopicKind) -> dict[str, Any]:
    if kind in _BY_ORDER:
        return {"type": "string", "description": "order_id"}
    if kind is TopicKind.DLQ:
        return {"type": "string", "description": "the rejected message's original key"}
    return {"type": "string", "pattern": KEY_PATTERN, "description": "SKU@WAREHOUSE"}


_CHANNELS = {
    **dict.fromkeys(INPUTS, "input, co-partitioned with the other inputs"),
    TopicKind.ORDER_REQUESTS: ("input of the order coordinator: whole orders; co-partitioned "
                               "with reservations"),
    TopicKind.RESERVATIONS: ("output of the stock processor; input of the order coordinator, "
                             "co-partitioned with order-requests"),
    TopicKind.ORDER_STATUS: "output of the order coordinator: one answer per order",
}


def asyncapi(topics: Topics | None = None) -> dict[str, Any]:
    """The AsyncAPI 3 document of every topic under `topics`' prefix and the events each
    carries."""
    topics = topics or Topics()
    by_topic: dict[TopicKind, list[str]] = {
        k: [] for k in (*INPUTS, TopicKind.ORDER_REQUESTS, *OUTPUTS)}
    for type_, (kind, _) in INPUT_EVENTS.items():
        by_topic[kind].append(f"inputs.{type_}")
    for type_, (kind, _) in OUTPUT_EVENTS.items():
        by_topic[kind].append(f"outputs.{type_}")
    messages: dict[str, Any] = {}
    for direction, models in (("inputs", INPUT_EVENTS), ("outputs", OUTPUT_EVENTS)):
        for type_, (kind, _) in models.items():
            messages[f"{direction}.{type_}"] = {
                "name": type_, "title": type_, "contentType": "application/cloudevents+json",
                "payload": {"schemaFormat": "application/schema+json;version=draft-2020-12",
                            "schema": {"$ref": f"{direction}/{type_}.schema.json"}},
                "bindings": {"kafka": {"key": _key_schema(kind), "bindingVersion": "0.5.0"}},
            }
    messages["dlq.rejected"] = {
        "name": "dlq.rejected", "title": "rejected input",
        "summary": "The rejected input's original bytes and key; why in headers.",
        "headers": {"type": "object",
                    "required": [f"stockflow.error.{h}" for h in DLQ_HEADERS],
                    "properties": {
                        **{f"stockflow.error.{h}": {"type": "string"} for h in DLQ_HEADERS},
                        "stockflow.error.reason": {"type": "string", "enum": REASONS}}},
        "payload": {"description": "the original message value, unchanged"},
        "bindings": {"kafka": {"key": _key_schema(TopicKind.DLQ), "bindingVersion": "0.5.0"}},
    }
    by_topic[TopicKind.DLQ] = ["dlq.rejected"]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for kind, types in by_topic.items():
        name = kind.value
        channels[name] = {
            "address": topics.name(kind),
            "description": _CHANNELS.get(kind, "output"),
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in types},
        }
        # reservations: sent by the processor, received by the coordinator
        for action, yes in (("receive", kind in INPUTS or kind in COORDINATOR_INPUTS),
                            ("send", kind in OUTPUTS)):
            if not yes:
                continue
            operations[f"{action}-{name}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{name}"},
                "messages": [{"$ref": f"#/channels/{name}/messages/{t}"} for t in types],
            }
        if kind is TopicKind.RESERVATIONS:
            operations["receive-reservations"]["summary"] = (
                "the order coordinator reads the verdicts on the parts it placed")
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "stockflow", "version": __version__,
                 "description": "Inventory stream processor: order, shipment, receipt and "
                                "adjustment events in; stock, low-stock, oversell and "
                                "reservation events out. Its order coordinator turns whole "
                                "orders (order-requests) into reservations and answers on "
                                "order-status. Topic names use the default "
                                "prefix `inventory.` (STOCKFLOW_TOPIC_PREFIX)."},
        "defaultContentType": "application/cloudevents+json",
        "servers": {"kafka": {"host": "localhost:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def documents() -> dict[str, str]:
    """Relative path -> content of every generated document."""
    docs = {f"inputs/{t}.schema.json": event_schema(t, "inputs") for t in INPUT_EVENTS}
    docs.update({f"outputs/{t}.schema.json": event_schema(t, "outputs") for t in OUTPUT_EVENTS})
    docs["asyncapi.json"] = asyncapi()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in docs.items()}


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "schemas")
    for name, text in documents().items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)
    print(f"wrote {len(documents())} documents to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
