"""JSON Schemas (draft 2020-12) of every event and an AsyncAPI 3 document of every topic,
generated from the pydantic models. `python -m stockflow.contract.schemas [DIR]` writes them
(default `schemas/`); a test fails when the files drift from the models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stockflow import __version__
from stockflow.contract.events import INPUT_MODELS, Reason
from stockflow.contract.outputs import OUTPUT_MODELS
from stockflow.contract.topics import INPUTS, OUTPUTS, TopicKind, Topics
from stockflow.domain.inputs import EARLIEST, LATEST

__all__ = ["asyncapi", "documents", "event_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
KEY_PATTERN = "^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9._-]{1,64}$"
DLQ_HEADERS = ("reason", "message", "topic", "partition", "offset")
REASONS = [r.value for r in Reason]


def event_schema(type_: str, direction: str) -> dict[str, Any]:
    """The CloudEvents envelope of `type_` ("inputs" or "outputs") with its data model.
    (reservation.expired is both: the sweeper's input and a reservation output.)"""
    kind, model = (INPUT_MODELS if direction == "inputs" else OUTPUT_MODELS)[type_]
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
            "subject": {"type": "string", "description": "SKU@WAREHOUSE when present"},
            "datacontenttype": {"type": "string"},
            "data": data,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _key_schema(kind: TopicKind) -> dict[str, Any]:
    if kind is TopicKind.RESERVATIONS:
        return {"type": "string", "description": "order_id"}
    if kind is TopicKind.DLQ:
        return {"type": "string", "description": "the rejected message's original key"}
    return {"type": "string", "pattern": KEY_PATTERN, "description": "SKU@WAREHOUSE"}


def asyncapi(topics: Topics | None = None) -> dict[str, Any]:
    topics = topics or Topics()
    by_topic: dict[TopicKind, list[str]] = {k: [] for k in (*INPUTS, *OUTPUTS)}
    for type_, (kind, _) in INPUT_MODELS.items():
        by_topic[kind].append(f"inputs.{type_}")
    for type_, (kind, _) in OUTPUT_MODELS.items():
        by_topic[kind].append(f"outputs.{type_}")
    messages: dict[str, Any] = {}
    for direction, models in (("inputs", INPUT_MODELS), ("outputs", OUTPUT_MODELS)):
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
            "description": ("input, co-partitioned with the other inputs" if kind in INPUTS
                            else "output"),
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in types},
        }
        operations[f"{'receive' if kind in INPUTS else 'send'}-{name}"] = {
            "action": "receive" if kind in INPUTS else "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{t}"} for t in types],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "stockflow", "version": __version__,
                 "description": "Inventory stream processor: order, shipment, receipt and "
                                "adjustment events in; stock, low-stock, oversell and "
                                "reservation events out. Topic names use the default "
                                "prefix `inventory.` (STOCKFLOW_TOPIC_PREFIX)."},
        "defaultContentType": "application/cloudevents+json",
        "servers": {"kafka": {"host": "localhost:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def documents() -> dict[str, str]:
    """Relative path -> content of every generated document."""
    docs = {f"inputs/{t}.schema.json": event_schema(t, "inputs") for t in INPUT_MODELS}
    docs.update({f"outputs/{t}.schema.json": event_schema(t, "outputs") for t in OUTPUT_MODELS})
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
