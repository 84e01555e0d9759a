"""What the reorder suggestions deliver: held-out demand replayed through the policy.

    .venv/bin/python bench/policy.py [--data generator|chicago|flights] [--skus 334]
                                     [--days 365] [--seeds 1,2,3] [--lead-time 7]
                                     [--review 7] [--cycles 10]
                                     [--service-levels 0.95] [--workers N]

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

`--data chicago` or `--data flights` plays real series instead (`bench/realdata.py`):
each key's first `--days` days are its history, the days after them are played. Chicago's
15 years are cut into consecutive pieces of history plus played days, each a key;
flights has one year, so its history is, unless `--days` says otherwise, the 288 days
before the 77 played (with the default lead time, review and cycles). `--seeds` and
`--skus` say nothing there. A key without any demand in the days played is left out (no
cycle of it could fail), and so is one whose history since its first demand is too short
to forecast; both are counted.

Per method and class (smooth / intermittent), per seed and over all seeds, and per target
(`--service-levels`, comma-separated), it prints:

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
spread of such sums (`stockflow.planning.reorder.safety_spread`, from the backtest's
daily errors with their autocorrelation, never under the square root of the sum), `k`
calibrated on the run's smooth keys' backtests for each target (`calibrated_multiplier`:
out of sample, as the level will be used, and for lost sales). For an
intermittent key it is the service level's quantile of a year's rolling sums of its
demand. `weekday_avg, cover L+R` is the seed's method under the new rule, `k` calibrated
on its own backtests: what the model choice adds at the same rule.

With more than one target, it prints what each holds at the same service: the two methods
under the new rule seldom land on the same achieved cycle service level, so the seed's
stock is interpolated, over the targets, at the service the chosen models achieved, and
the chosen models' stock is compared with it (`at_equal_service`; not extrapolated
beyond the seed's lowest and highest achieved service). The forecasts are made once per
review whatever the target; only the plays differ.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from forecasts import daily_demand, history_arguments, history_days, keys_of
from realdata import load, pieces
from rich.console import Console
from rich.table import Table

from stockflow.devtools.backfill import patterns
from stockflow.planning.forecast import BASELINE, forecast_key, forecast_with
from stockflow.planning.reorder import (
    RECENT_DEMAND_DAYS,
    Outlook,
    Suggestion,
    calibrated_multipliers,
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


Multipliers = dict[tuple[str, float], float]  # (model, target) -> the new rule's k
Played = tuple[str, dict[float, dict[str, Outcome]]]  # class, target -> method -> outcome


def _one(y: Series, held: Series, rules: Play, targets: tuple[float, ...],
         k: Multipliers) -> Played:
    """A key's class and its outcome under each method at each target; ValueError if it
    cannot be forecast (too short a history) or has no demand to serve in the days
    played (no cycle of it can fail: counted apart, not as a success)."""
    if not held[:rules.days].any():
        raise ValueError("no demand in the days played")
    first = forecast_key("key", y, HORIZON)
    forecasts: dict[tuple[str, int], tuple[Series, Series]] = {}

    def forecast(model: str, day: int) -> tuple[Series, Series]:
        # the same at every target: what a review sees does not depend on what was ordered
        if (model, day) not in forecasts:
            forecasts[model, day] = forecast_with(model, np.concatenate([y, held[:day]]),
                                                  HORIZON)
        return forecasts[model, day]

    got: dict[float, dict[str, Outcome]] = {}
    for target in targets:
        at = replace(rules, service_level=target)
        methods: dict[str, Outcome] = {}
        for name, model in ((BASELINE, BASELINE), ("chosen", first.model)):
            def policy(day: int, position: int, model: str = model, at: Play = at,
                       ) -> Suggestion:
                mean, errors = forecast(model, day)
                return suggest(mean.tolist(), float(errors.std()), available=position,
                               in_transit=0, lead_time_days=at.lead_time,
                               review_days=at.review, service_level=at.service_level)
            methods[name] = play(held, policy, at, policy(0, 0).order_up_to)
        for name, model, calibrated in ((CANDIDATE, first.model, "chosen"),
                                        (SEEDS_RULE, BASELINE, BASELINE)):
            def candidate(day: int, position: int, model: str = model, at: Play = at,
                          multiplier: float = k[calibrated, target]) -> Suggestion:
                mean, errors = forecast(model, day)
                seen = np.concatenate([y, held[:day]])
                return top_up(Outlook(mean.tolist(), first.kind, errors,
                                      seen[-RECENT_DEMAND_DAYS:]),
                              multiplier=multiplier, available=position, in_transit=0,
                              lead_time_days=at.lead_time, review_days=at.review,
                              service_level=at.service_level)
            methods[name] = play(held, candidate, at, candidate(0, 0).order_up_to)
        got[target] = methods
    return first.kind, got  # its class as the forecast saw it: from its first demand on


def _chunk(items: list[tuple[Series, Series]], rules: Play, targets: tuple[float, ...],
           k: Multipliers) -> list[Played | str]:
    out: list[Played | str] = []
    for y, held in items:
        try:
            out.append(_one(y, held, rules, targets, k))
        except ValueError as exc:
            out.append(str(exc))
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

    def service(self, group: str, name: str) -> float | None:
        """The cycle service level of `name` over `group`'s keys; None: no cycle."""
        o = self.by.get((group, name))
        return 1 - o.stocked_out / o.cycles if o is not None and o.cycles else None

    def stock(self, group: str, name: str) -> float | None:
        """Stock held in days of the group's average demand; None: no demand."""
        o = self.by.get((group, name))
        return o.on_hand / o.demand if o is not None and o.demand else None

    def table(self, title: str) -> Table:
        t = Table(title=title)
        for col in ("class", "method", "keys", "cycle service level", "fill rate",
                    "stock held (days)", "orders per key"):
            t.add_column(col, justify="left" if col in ("class", "method") else "right",
                         no_wrap=col == "method")
        for group in ("smooth", "intermittent", "all"):
            for name in (BASELINE, "chosen", SEEDS_RULE, CANDIDATE):
                o = self.by.get((group, name))
                service, stock = self.service(group, name), self.stock(group, name)
                if o is None or service is None:
                    continue
                t.add_row(group, name, f"{self.keys[group]:,}", f"{service:.1%}",
                          f"{o.served / o.demand:.1%}" if o.demand else "-",
                          f"{stock:.1f}" if stock is not None else "-",
                          f"{o.orders / self.keys[group]:.1f}")
        return t


def at_equal_service(totals: dict[float, Totals], title: str) -> Table:
    """Stock held by the new rule on the chosen models, against what the seed's method
    under the same rule holds at the same achieved cycle service level: the seed's
    (service, stock) points over the targets, interpolated at the chosen models' service
    (never extrapolated: "-" outside the seed's range)."""
    t = Table(title=title, caption=f"chosen: {CANDIDATE}; seed's: {SEEDS_RULE}; stock held "
                                   "in days of demand")
    for col in ("class", "target", "chosen: service", "stock", "seed's: service", "stock ",
                "seed's stock at the chosen's service", "chosen against it"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for group in ("smooth", "intermittent", "all"):
        seeds = sorted((s, st) for tot in totals.values()
                       if (s := tot.service(group, SEEDS_RULE)) is not None
                       and (st := tot.stock(group, SEEDS_RULE)) is not None)
        for target, tot in sorted(totals.items()):
            ours = tot.service(group, CANDIDATE), tot.stock(group, CANDIDATE)
            theirs = tot.service(group, SEEDS_RULE), tot.stock(group, SEEDS_RULE)
            if None in ours or None in theirs or not seeds:
                continue
            service, stock = (float(v) for v in ours)  # type: ignore[arg-type]
            inside = seeds[0][0] <= service <= seeds[-1][0]
            same = float(np.interp(service, [p[0] for p in seeds], [p[1] for p in seeds])) \
                if inside else None
            t.add_row(group, f"{target:.0%}", f"{service:.1%}", f"{stock:.1f}",
                      f"{theirs[0]:.1%}", f"{theirs[1]:.1f}",
                      f"{same:.1f}" if same is not None else "-",
                      f"{stock / same - 1:+.0%}" if same else "-")
    return t


def _leave_interrupts_to_the_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main() -> int:
    try:
        return _run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


def _draws(args: argparse.Namespace, rules: Play,
           ) -> Iterator[tuple[str, int, list[tuple[Series, Series]]]]:
    """(name, days of history, (history, days played) per key): a draw per seed of the
    generator, or the real set, its keys cut to the history and the days played."""
    if args.data != "generator":
        real = load(args.data)
        days = history_days(args.days, real, rules.days)
        demand = pieces(real, days + rules.days)
        yield args.data, days, [(y[:days], y[days:]) for y in demand.values()]
        return
    days = history_days(args.days, None)
    keys = keys_of(args.skus)
    for seed in (int(s) for s in args.seeds.split(",")):
        total = days + rules.days
        demand = daily_demand(patterns(keys, total, seed), total, seed)
        yield f"seed {seed}", days, [(y[:days], y[days:]) for y in demand.values()]


def _run() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    history_arguments(ap)
    ap.add_argument("--lead-time", type=int, default=7)
    ap.add_argument("--review", type=int, default=7)
    ap.add_argument("--cycles", type=int, default=10, help="review periods played")
    ap.add_argument("--service-levels", default="0.95",
                    help="targets, comma-separated; with more than one, the stock each "
                         "method holds at the same achieved service is compared")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    targets = tuple(sorted(float(t) for t in args.service_levels.split(",")))
    if not all(0.5 <= t < 1 for t in targets):
        ap.error("--service-levels: each from 0.5 to under 1")
    rules = Play(args.lead_time, args.review, args.cycles, targets[0])
    console = Console(width=max(Console().width, 110))
    overall = {t: Totals() for t in targets}
    cover = rules.lead_time + rules.review
    ctx = multiprocessing.get_context("fork")  # workers inherit numpy and statsforecast
    with ProcessPoolExecutor(args.workers, mp_context=ctx,
                             initializer=_leave_interrupts_to_the_parent) as pool:
        for name, days, items in _draws(args, rules):
            started = time.monotonic()
            chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
            with console.status(f"{name}: calibrating on {len(items):,} backtests"):
                backtests = [e for got in pool.map(_backtests, chunks) for e in got]
            k: Multipliers = {}
            for i, model in enumerate(("chosen", BASELINE)):
                for target, multiplier in calibrated_multipliers(
                        [b[i] for b in backtests], cover, targets,
                        review_days=rules.review).items():
                    k[model, target] = multiplier
            console.print(f"{name}: {days} days of history; k from {len(backtests):,} smooth "
                          f"keys' backtests: " + "; ".join(
                              f"{t:.0%} {k['chosen', t]:.2f} (chosen), {k[BASELINE, t]:.2f} "
                              f"({BASELINE}), the normal z {NormalDist().inv_cdf(t):.2f}"
                              for t in targets))
            totals = {t: Totals() for t in targets}
            left: dict[str, int] = defaultdict(int)
            with console.status(f"{name}: forecasting and playing {len(items):,} keys"):
                n = len(chunks)
                for got in pool.map(_chunk, chunks, [rules] * n, [targets] * n, [k] * n):
                    for one in got:
                        if isinstance(one, str):
                            left["no demand" if one.startswith("no demand")
                                 else "too short"] += 1
                            continue
                        kind, outcomes = one
                        for t, methods in outcomes.items():
                            totals[t].add(kind, methods)
                            overall[t].add(kind, methods)
            if left:
                console.print(f"{name}: keys not played: {left['too short']:,} too short a "
                              f"history since their first demand, {left['no demand']:,} "
                              "without demand in the days played")
            for t in targets if args.data == "generator" else ():  # a real set: one draw
                console.print(totals[t].table(
                    f"{name}: {totals[t].keys['all']:,} keys, target {t:.0%}, "
                    f"{time.monotonic() - started:.0f} s"))
    what = "seeds " + args.seeds if args.data == "generator" else args.data
    for t in targets:
        console.print(overall[t].table(
            f"{what}: lead time {rules.lead_time} d, review {rules.review} d, "
            f"{rules.cycles} cycles, target {t:.0%}"))
    if len(targets) > 1:
        console.print(at_equal_service(overall, f"{what}: stock at equal service"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
