"""Structured logs: one JSON object per line, with the event id and key a record speaks
about when it has them (pass them as `extra={"event_id": ..., "key": ...}`); sentences
for a person at a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "SentenceFormatter", "configure"]

_FIELDS = ("event_id", "key", "topic", "partition", "offset", "reason")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, and the event id and
    key it speaks of."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class SentenceFormatter(logging.Formatter):
    """For a person at a terminal: the message as a sentence, after `error:` or `warning:`
    when it is one. An unexpected error's traceback is shown at DEBUG level only."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        if record.exc_info and logging.getLogger().isEnabledFor(logging.DEBUG):
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_info:
            text += " (--log-level DEBUG shows where)"
        return text


def configure(level: str, fmt: str | None = None) -> None:
    """Root logging to stderr: JSON lines (`json`), plain lines with time, level and
    logger (`text`), or with no format chosen, JSON unless stderr is a terminal, where a
    person reads sentences."""
    if fmt is None:
        fmt = "sentences" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else SentenceFormatter() if fmt == "sentences"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # warnings a library raises would otherwise be written to stderr as plain text
    logging.captureWarnings(True)
