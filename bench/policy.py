"""What the reorder suggestions deliver: held-out demand replayed through the policy.

    .venv/bin/python bench/policy.py [--skus 334] [--days 365] [--seeds 1,2,3]
                                     [--lead-time 7] [--review 7] [--cycles 10]
                                     [--service-level 0.95] [--workers N]

Forecast accuracy is not what a buyer is judged by: a stock-out is. For each key of the
backfill generator (`bench/forecasts.py` draws the same histories, no services), this
forecasts from `--days` days of history, as `stockflow forecast` does, then plays the
days after it through the suggestions: a review every `--review` days, an order (what
the suggestion says) whenever the inventory position (on hand plus what is on its way) is
at or under the reorder point, each order arriving `--lead-time` days after it was placed,
demand served from what is on hand and otherwise lost (the generator's demand turned
away). It starts with the order-up-to level on hand and plays `--cycles` review periods.
At each review the key is forecast again from all it has seen (the model chosen before
the first day is kept and refit): what a buyer gets who runs `stockflow forecast` before
each review.

Per method and class (smooth / intermittent), per seed and over all seeds, it prints:

- **cycle service level**: the share of replenishment cycles with no stock-out; a cycle
  runs from one order's arrival to the next arrival, and any unit of demand it could not
  serve makes it a stock-out (the days before the first arrival are no cycle);
- **fill rate**: the share of demand served;
- **stock held**: the average on hand at the end of a day, in days of the key's average
  demand over the played days (total over total, so slow movers weigh by their demand);
- **orders** placed per key.

Methods: `weekday_avg`, the seed's method (the average of the same weekday over the last
90 days and its backtest error spread) under the current rule, and `chosen`, the model
the backtest chooses, under the same rule (`stockflow.planning.reorder.suggest`: the
reorder point covers the lead time only, the safety stock is one day's error times the
square root of the days); and `chosen, cover L+R`, the new rule (`reorder.top_up`): the
chosen model's forecast, topped up at every review to a level that covers lead time plus
review period. For a smooth key that level is the forecast's sum plus `k` times the
spread of such sums (`stockflow.planning.reorder.cover_spread`, from the backtest's daily
errors with their autocorrelation), `k` calibrated on the run's smooth keys' backtests
(`calibrated_multiplier`: out of sample, as the level will be used). For an
intermittent key it is the service level's quantile of a year's rolling sums of its
demand. `weekday_avg, cover L+R` is the seed's method under the new rule, `k` calibrated
on its own backtests: what the model choice adds at the same rule.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from forecasts import daily_demand, history_arguments, keys_of
from rich.console import Console
from rich.table import Table

from stockflow.devtools.backfill import patterns
from stockflow.planning.forecast import BASELINE, forecast_key, forecast_with
from stockflow.planning.reorder import (
    RECENT_DEMAND_DAYS,
    Outlook,
    Suggestion,
    calibrated_multiplier,
    suggest,
    top_up,
)

Series = npt.NDArray[np.float64]
HORIZON = 14  # the forecast's, as `stockflow forecast` makes it
CANDIDATE = "chosen, cover L+R"
SEEDS_RULE = f"{BASELINE}, cover L+R"  # the seed's method under the new rule
_CHUNK = 50  # keys per task of the process pool


@dataclass(frozen=True)
class Play:
    lead_time: int
    review: int
    cycles: int
    service_level: float

    @property
    def days(self) -> int:
        """Days played: every review's order has arrived by the end."""
        return self.review * self.cycles + self.lead_time


@dataclass
class Outcome:
    """One key under one method."""

    cycles: int = 0
    stocked_out: int = 0
    demand: float = 0.0
    served: float = 0.0
    on_hand: float = 0.0  # summed over the days
    orders: int = 0


def play(demand: Series, policy: Callable[[int, int], Suggestion], rules: Play,
         start: int) -> Outcome:
    """Replay `demand` (held-out, one value a day) through reviews every `rules.review`
    days, each asking `policy(day, position)` what to order. `start` units are on hand."""
    on_hand, pipeline = float(start), [0.0] * (rules.days + rules.lead_time + 1)
    out = Outcome()
    in_cycle, short = False, False
    for day, wanted in enumerate(demand[:rules.days]):
        arriving = pipeline[day]
        if arriving:
            on_hand += arriving
            if in_cycle:  # the cycle that this arrival ends
                out.cycles += 1
                out.stocked_out += short
            in_cycle, short = True, False
        if day % rules.review == 0 and day < rules.review * rules.cycles:
            on_order = sum(pipeline[day + 1:])
            got = policy(day, round(on_hand + on_order))
            if got.suggested_quantity:
                pipeline[day + rules.lead_time] += got.suggested_quantity
                out.orders += 1
        served = min(on_hand, float(wanted))
        short |= bool(served < wanted)
        on_hand -= served
        out.demand += float(wanted)
        out.served += served
        out.on_hand += on_hand
    return out


def _backtests(items: list[tuple[Series, Series]]) -> list[tuple[Outlook, Outlook]]:
    """The smooth keys' outlooks under their chosen models and under the seed's method,
    for the `k` of each."""
    out: list[tuple[Outlook, Outlook]] = []
    for y, _ in items:
        try:
            first = forecast_key("key", y, HORIZON)
        except ValueError:
            continue
        if first.kind == "smooth":
            recent = y[-RECENT_DEMAND_DAYS:]
            (ours, our_errors), (seeds, seeds_errors) = (
                forecast_with(m, y, HORIZON) for m in (first.model, BASELINE))
            out.append((Outlook(ours.tolist(), "smooth", our_errors, recent),
                        Outlook(seeds.tolist(), "smooth", seeds_errors, recent)))
    return out


def _one(y: Series, held: Series, rules: Play, k: dict[str, float],
         ) -> tuple[str, dict[str, Outcome]]:
    """A key's class and its outcome under each method (`k`: the new rule's multiplier
    per model); ValueError if it cannot be forecast (too short a history)."""
    first = forecast_key("key", y, HORIZON)
    models = {BASELINE: BASELINE, "chosen": first.model}
    got = {}
    for name, model in models.items():
        def policy(day: int, position: int, model: str = model) -> Suggestion:
            mean, errors = forecast_with(model, np.concatenate([y, held[:day]]), HORIZON)
            return suggest(mean.tolist(), float(errors.std()), available=position,
                           in_transit=0, lead_time_days=rules.lead_time,
                           review_days=rules.review, service_level=rules.service_level)
        got[name] = play(held, policy, rules, policy(0, 0).order_up_to)
    for name, model, calibrated in ((CANDIDATE, first.model, "chosen"),
                                    (SEEDS_RULE, BASELINE, BASELINE)):
        def candidate(day: int, position: int, model: str = model,
                      multiplier: float = k[calibrated]) -> Suggestion:
            seen = np.concatenate([y, held[:day]])
            mean, errors = forecast_with(model, seen, HORIZON)
            return top_up(Outlook(mean.tolist(), first.kind, errors,
                                  seen[-RECENT_DEMAND_DAYS:]),
                          multiplier=multiplier, available=position, in_transit=0,
                          lead_time_days=rules.lead_time, review_days=rules.review,
                          service_level=rules.service_level)
        got[name] = play(held, candidate, rules, candidate(0, 0).order_up_to)
    return first.kind, got  # its class as the forecast saw it: from its first demand on


def _chunk(items: list[tuple[Series, Series]], rules: Play, k: dict[str, float],
           ) -> list[tuple[str, dict[str, Outcome]] | None]:
    out: list[tuple[str, dict[str, Outcome]] | None] = []
    for y, held in items:
        try:
            out.append(_one(y, held, rules, k))
        except ValueError:
            out.append(None)
    return out


@dataclass
class Totals:
    """Outcomes summed per (group, method)."""

    by: dict[tuple[str, str], Outcome] = field(default_factory=lambda: defaultdict(Outcome))
    keys: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, kind: str, got: dict[str, Outcome]) -> None:
        for group in (kind, "all"):
            self.keys[group] += 1
            for name, o in got.items():
                t = self.by[(group, name)]
                t.cycles += o.cycles
                t.stocked_out += o.stocked_out
                t.demand += o.demand
                t.served += o.served
                t.on_hand += o.on_hand
                t.orders += o.orders

    def table(self, title: str, rules: Play) -> Table:
        t = Table(title=title)
        for col in ("class", "method", "keys", "cycle service level", "fill rate",
                    "stock held (days)", "orders per key"):
            t.add_column(col, justify="left" if col in ("class", "method") else "right",
                         no_wrap=col == "method")
        for group in ("smooth", "intermittent", "all"):
            for name in (BASELINE, "chosen", SEEDS_RULE, CANDIDATE):
                o = self.by.get((group, name))
                if o is None or not o.cycles:
                    continue
                daily = o.demand / rules.days
                t.add_row(group, name, f"{self.keys[group]:,}",
                          f"{1 - o.stocked_out / o.cycles:.1%}", f"{o.served / o.demand:.1%}",
                          f"{o.on_hand / rules.days / daily:.1f}" if daily else "-",
                          f"{o.orders / self.keys[group]:.1f}")
        return t


def _leave_interrupts_to_the_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main() -> int:
    try:
        return _run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


def _run() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    history_arguments(ap)
    ap.add_argument("--lead-time", type=int, default=7)
    ap.add_argument("--review", type=int, default=7)
    ap.add_argument("--cycles", type=int, default=10, help="review periods played")
    ap.add_argument("--service-level", type=float, default=0.95)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rules = Play(args.lead_time, args.review, args.cycles, args.service_level)
    console = Console(width=max(Console().width, 110))
    keys = keys_of(args.skus)
    overall = Totals()
    ctx = multiprocessing.get_context("fork")  # workers inherit numpy and statsforecast
    with ProcessPoolExecutor(args.workers, mp_context=ctx,
                             initializer=_leave_interrupts_to_the_parent) as pool:
        for seed in (int(s) for s in args.seeds.split(",")):
            started = time.monotonic()
            total = args.days + rules.days
            pats = patterns(keys, total, seed)
            with console.status(f"seed {seed}: drawing {len(keys):,} keys x {total} days"):
                demand = daily_demand(pats, total, seed)
            items = [(y[:args.days], y[args.days:]) for y in demand.values()]
            chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
            totals = Totals()
            with console.status(f"seed {seed}: calibrating on {len(keys):,} backtests"):
                backtests = [e for got in pool.map(_backtests, chunks) for e in got]
            cover = rules.lead_time + rules.review
            k = {model: calibrated_multiplier([b[i] for b in backtests], cover,
                                              rules.service_level, review_days=rules.review)
                 for i, model in enumerate(("chosen", BASELINE))}
            console.print(f"seed {seed}: k = {k['chosen']:.2f} (chosen), {k[BASELINE]:.2f} "
                          f"({BASELINE}) from {len(backtests):,} smooth keys' backtests "
                          f"(the normal z: {NormalDist().inv_cdf(rules.service_level):.2f})")
            with console.status(f"seed {seed}: forecasting and playing {len(keys):,} keys"):
                for got in pool.map(_chunk, chunks, [rules] * len(chunks), [k] * len(chunks)):
                    for one in got:
                        if one is not None:
                            totals.add(*one)
                            overall.add(*one)
            console.print(totals.table(
                f"seed {seed}: {totals.keys['all']:,} keys, {time.monotonic() - started:.0f} s",
                rules))
    console.print(overall.table(
        f"seeds {args.seeds}: lead time {rules.lead_time} d, review {rules.review} d, "
        f"{rules.cycles} cycles, target {rules.service_level:.0%}", rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
