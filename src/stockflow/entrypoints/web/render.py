"""Pages from Jinja2 templates, escaped by default (a `<script>` in a reason or a name is
text on the page), with the filters that make numbers and times readable: `units` groups
thousands, `when` gives a time in UTC and says so, `text` shows bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["page", "text", "units", "when"]


_UNKNOWN = "\u2013"  # an en dash: nothing known


def units(n: int | Decimal | None) -> str:
    """12345 as "12,345"; nothing known as a dash."""
    return _UNKNOWN if n is None else f"{n:,}"


def when(t: datetime | None) -> str:
    """A time as people read it, in UTC, with the zone named; nothing known as a dash."""
    return _UNKNOWN if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def text(data: bytes | None) -> str:
    """Bytes as text (what is not UTF-8 as the replacement character); none as ""."""
    return "" if data is None else data.decode("utf-8", "replace")


_templates = Environment(
    loader=PackageLoader("stockflow.entrypoints.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.filters.update(units=units, when=when, text=text)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` with `context`, for the request's visitor (if any)."""
    html = _templates.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status)
