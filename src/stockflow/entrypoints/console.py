"""The main job's live terminal view and its closing summary, read from the processor's
metrics registry and from Postgres."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from rich.table import Table

from stockflow.adapters.db import queries
from stockflow.adapters.db.store import Conn
from stockflow.adapters.metrics import RECENT_LATENCY, RECENT_SPAN
from stockflow.entrypoints.tables import add_column

__all__ = ["Snapshot", "View", "summary", "summary_table"]


@dataclass
class Snapshot:
    """The processor's figures at one moment, read from its metrics."""

    at: float
    by_type: Counter[str] = field(default_factory=Counter)  # applied+noop events by type
    lag: float = 0.0
    dlq: float = 0.0
    oversell: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)  # quantile: s, see RECENT_SPAN

    @classmethod
    def take(cls, registry: CollectorRegistry) -> Snapshot:
        """The figures in `registry` now."""
        snap = cls(time.monotonic())
        for fam in registry.collect():
            for s in fam.samples:
                if s.name == "stockflow_events_total" and s.labels["outcome"] != "rejected":
                    snap.by_type[s.labels["type"]] += int(s.value)
                elif s.name == "stockflow_consumer_lag_messages":
                    snap.lag += s.value
                elif s.name == "stockflow_dlq_total":
                    snap.dlq += s.value
                elif s.name == "stockflow_oversell_total":
                    snap.oversell += s.value
                elif s.name == RECENT_LATENCY:
                    snap.latency[s.labels["quantile"]] = s.value
        return snap

    def latencies(self) -> str:
        """p50, p95 and p99 of the last minute's events, exact."""
        if not self.latency:
            return "latency -"
        return f"latency (last {RECENT_SPAN:g} s) " + "  ".join(
            f"p{float(q) * 100:g} {self.latency[q] * 1000:,.0f} ms" for q in self.latency)


@dataclass
class View:
    """The main job's live view: what it read last, and the lines shown above it."""

    registry: CollectorRegistry
    conn: Conn
    published: Counter[str]
    banner: list[str] = field(default_factory=list)  # lines shown above the figures
    last: Snapshot | None = None

    def render(self, *, banner: bool = True) -> str:
        """The view now, as text (with the banner unless told not to)."""
        snap = Snapshot.take(self.registry)
        prev, self.last = self.last, snap
        span = (snap.at - prev.at) if prev else 1.0
        rates = {t: (n - (prev.by_type[t] if prev else 0)) / span
                 for t, n in snap.by_type.items()}
        low = queries.most_critical(self.conn, 5)
        lines = [
            *(self.banner if banner else []),
            f"stockflow  published {sum(self.published.values()):,}  processed "
            f"{sum(snap.by_type.values()):,}  lag {snap.lag:,.0f}  {snap.latencies()}  "
            f"DLQ {snap.dlq:,.0f}  oversells {snap.oversell:,.0f}",
            "events/s: " + "  ".join(f"{t} {r:,.0f}" for t, r in sorted(rates.items()) if r),
            "most critical: " + ("  ".join(f"{k} {sev} ({avail})" for k, avail, sev in low)
                                 or "none"),
        ]
        return "\n".join(lines)

    def show(self) -> None:
        """Print the view: in place on a terminal, appended otherwise."""
        if sys.stdout.isatty():  # redrawn in place, the banner included
            sys.stdout.write("\x1b[2J\x1b[H" + self.render() + "\n")
        else:  # appended: the banner once
            sys.stdout.write(self.render(banner=self.last is None) + "\n")
        sys.stdout.flush()


def summary(conn: Conn, published: Counter[str], seconds: float) -> dict[str, object]:
    """The closing figures, from Postgres: what was really committed."""
    found = queries.totals(conn)
    outcomes = found["outcomes"]
    return {
        "seconds": round(seconds, 1),
        "published": sum(published.values()),
        "processed": sum(outcomes.values()),
        "applied": outcomes.get("applied", 0),
        "noop": outcomes.get("noop", 0),
        "keys": found["keys"], "on_hand": found["on_hand"], "reserved": found["reserved"],
        "low_stock_open": found["alerts"],
    }


def summary_table(figures: dict[str, object]) -> Table:
    """The closing figures for a person (`up --json` gives them to a program)."""
    table = Table(title="summary", show_header=False)
    add_column(table, "figure", number=False)
    add_column(table, "value", number=True)
    for name, value in figures.items():
        if isinstance(value, dict):  # counts by kind, e.g. open alerts by severity
            shown = ", ".join(f"{n:,} {kind.replace('_', ' ')}"
                              for kind, n in sorted(value.items())) or "0"
        else:
            shown = f"{value:,} s" if name == "seconds" else f"{value:,}"
        table.add_row(_LABELS.get(name, name.replace("_", " ")), shown)
    return table


_LABELS = {"noop": "no-op", "low_stock_open": "low-stock alerts open"}
