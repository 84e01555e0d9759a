"""Structured logs carry what they speak about."""

from __future__ import annotations

import json
import logging

from stockflow.adapters.logs import JsonFormatter, SentenceFormatter


def test_json_lines_carry_event_id_and_key() -> None:
    record = logging.LogRecord("stockflow.engine.checkpoint", logging.INFO, __file__, 1,
                               "rejected: %s", ("bad quantity",), None)
    record.__dict__.update(event_id="ev-1", key="SKU-1@WH-1", reason="schema_violation")
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "rejected: bad quantity"
    assert (doc["level"], doc["event_id"], doc["key"]) == ("info", "ev-1", "SKU-1@WH-1")
    assert doc["reason"] == "schema_violation"
    assert "topic" not in doc  # absent fields are left out, not null


def test_a_person_at_a_terminal_reads_sentences() -> None:
    def line(level: int, msg: str, exc: BaseException | None = None) -> str:
        record = logging.LogRecord("stockflow", level, __file__, 1, msg, (), None)
        if exc is not None:
            record.exc_info = (type(exc), exc, None)
        return SentenceFormatter().format(record)

    assert line(logging.INFO, "processing") == "processing"
    assert line(logging.WARNING, "slow") == "warning: slow"
    assert line(logging.ERROR, "port 9108 is in use") == "error: port 9108 is in use"
    assert line(logging.CRITICAL, "stopped", RuntimeError("boom")) == (
        "error: stopped (--log-level DEBUG shows where)")  # no traceback unless asked
