"""A key's on hand, available and reserved over time, as an SVG drawn on the server: step
lines (a quantity holds until the next movement), a labelled unit axis and the first and
last dates. SVG rather than a PNG: no image round trip, and it scales to any width."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from markupsafe import Markup, escape

__all__ = ["SERIES", "Point", "stock_svg"]

WIDTH, HEIGHT = 760, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 16, 40
# distinct for colour-blind readers (Okabe-Ito), and told apart by dashes as well
SERIES = (("on hand", "#0072B2", ""), ("available", "#009E73", "6 3"),
          ("reserved", "#D55E00", "2 3"))


class Point(NamedTuple):
    """A key's quantities after one movement, and when it happened (business time)."""

    at: datetime
    on_hand: int
    reserved: int


def stock_svg(points: Sequence[Point], now: datetime) -> Markup:
    """The chart of `points` (oldest first) up to `now`; an empty state without them."""
    if not points:
        return Markup('<p class="empty">No movements yet.</p>')
    start, end = points[0].at, max(now, points[-1].at)
    span = max((end - start).total_seconds(), 1.0)
    values = [(p.on_hand, p.on_hand - p.reserved, p.reserved) for p in points]
    low = min(0, *(min(v) for v in values))
    high = max(1, *(max(v) for v in values))

    def x(t: datetime) -> float:
        return _LEFT + (t - start).total_seconds() / span * (WIDTH - _LEFT - _RIGHT)

    def y(v: int) -> float:
        return _TOP + (high - v) / (high - low) * (HEIGHT - _TOP - _BOTTOM)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             'aria-label="on hand, available and reserved over time">']
    parts.extend(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                 f'stroke="#ccc"/><text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" '
                 f'text-anchor="end">{v:,}</text>' for v in sorted({low, 0, high}))
    for i, (name, colour, dashes) in enumerate(SERIES):
        path = [f"M{x(points[0].at):.1f} {y(values[0][i]):.1f}"]
        path += [f"H{x(p.at):.1f} V{y(v[i]):.1f}"
                 for p, v in zip(points[1:], values[1:], strict=True)]
        path.append(f"H{x(end):.1f}")
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"{dash}><title>{escape(name)}</title></path>')
        parts.append(f'<line x1="{_LEFT + i * 130}" x2="{_LEFT + i * 130 + 24}" '
                     f'y1="{HEIGHT - 10}" y2="{HEIGHT - 10}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/><text x="{_LEFT + i * 130 + 30}" '
                     f'y="{HEIGHT - 6}">{escape(name)}</text>')
    for t, anchor in ((start, "start"), (end, "end")):
        parts.append(f'<text x="{x(t):.1f}" y="{HEIGHT - 24}" text-anchor="{anchor}">'
                     f'{t:%Y-%m-%d %H:%M} UTC</text>')
    parts.append("</svg>")
    # numbers, dates and escaped names only: nothing a user wrote goes in unescaped
    return Markup("".join(parts))  # noqa: S704
