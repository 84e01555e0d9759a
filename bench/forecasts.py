"""Forecast accuracy against the truth the backfill was drawn from, or on real demand, with
no services.

    .venv/bin/python bench/forecasts.py [--data generator|chicago|flights] [--skus 334]
                                        [--days 365] [--seeds 1,2,3] [--horizon 14]
                                        [--workers N]

`stockflow simulate --backfill-days` publishes a history through Kafka into the ledger, and
`stockflow forecast --all --backtest` measures the models on it. This makes the same daily
demand in memory (the generator's own events: units shipped plus demand turned away, per
event-time day, as the ledger holds them), runs the same backtest on each key, and adds
what the ledger cannot know:

- each key's pattern (plain, level shift, launch, phase-out, slow mover);
- two forecasts from the generator's truth, scored on the same held-out window: `truth`,
  each day's true mean, promotions included, and `truth, no promotions`, the true mean
  with the held-out window's promotions taken out. No history foretells a promotion, so
  the second is the most an unbiased forecast can gain over the baseline here.

It prints MASE per model and class against the seed's baseline, per seed and over all
seeds, and the share of that attainable gain the chosen models reach.

`--data chicago` or `--data flights` forecasts real series instead (`bench/realdata.py`:
what they are, and how Chicago's 15 years are cut into keys of `--days` days), where no
truth is known; `--seeds` and `--skus` say nothing there. For every `--data` it prints
the accuracy table (`Accuracy`), per class, of the baseline and the chosen models on the
held-out window (the backtest's last, as `stockflow forecast --backtest` scores it):
MASE, RMSSE (root mean squared error over the in-sample seasonal naive's), bias (forecast
less demand, over demand, all keys' totals) and the chosen models' quantile loss (the
pinball loss of the 80% and 95% intervals' bounds, a mean over the four, per day, over
the MASE scale; the baseline has no intervals). MASE, RMSSE and the quantile loss are
means over the keys that have an in-sample error to scale by.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
from realdata import SETS, Demand, load, pieces
from rich.console import Console
from rich.table import Table

from stockflow import StockflowError
from stockflow.devtools.backfill import Pattern, history, patterns
from stockflow.planning.forecast import BASELINE, MODELS, ORIGINS, KeyForecast, forecast_with
from stockflow.usecases.forecasting import forecast_keys

Series = npt.NDArray[np.float64]
TRUTH, NO_PROMOTIONS = "truth", "truth, no promotions"
_MEANINGFUL = -0.02  # an attainable gain smaller than this makes a share of it noise
_END = datetime(2026, 1, 1, tzinfo=UTC)  # any day: the generator's draws do not depend on it


def history_arguments(ap: argparse.ArgumentParser) -> None:
    """The options that say which histories to draw or load, and on how many processes to
    work: the same for every benchmark that reads daily demand."""
    ap.add_argument("--data", choices=("generator", *SETS), default="generator",
                    help="the backfill's generator, or a real set (bench/realdata.py)")
    ap.add_argument("--skus", type=int, default=334, help="SKUs, each in 3 warehouses")
    ap.add_argument("--days", type=int, default=None,
                    help="days of history (365, or what a year-long set has before the "
                         "days played)")
    ap.add_argument("--seeds", default="1,2,3", help="histories to draw, comma-separated")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)


def history_days(days: int | None, real: Demand | None, after: int = 0) -> int:
    """Days of history asked for, or else a year, or for a real set too short for a year
    and `after` more days, what it has before them."""
    if days is not None:
        return days
    return 365 if real is None else min(365, real.days - after)


def keys_of(skus: int) -> list[str]:
    """The drawn keys: each SKU in 3 warehouses, as `simulate --backfill-days` names them."""
    return [f"SKU-{s:05d}@WH-{w}" for s in range(skus) for w in (1, 2, 3)]


def pattern_of(p: Pattern) -> str:
    if p.kind == "intermittent":
        return "slow mover"
    if p.launch[1]:
        return "launch"
    if p.phase_out is not None:
        return "phase-out"
    return "level shift" if p.shift is not None else "plain"


def daily_demand(pats: dict[str, Pattern], days: int, seed: int) -> dict[str, Series]:
    """Each key's demand per day as the ledger records it: shipped plus turned away."""
    first = (_END - timedelta(days=days)).date()
    got = {key: np.zeros(days) for key in pats}
    for type_, data, at in history(pats, days, _END, seed):
        if type_ != "receipt.received":
            got[f"{data['sku']}@{data['warehouse']}"][(at.date() - first).days] += \
                data["quantity"]
    return got


def truth(p: Pattern, days: range, *, promotions: bool) -> Series:
    if not promotions:
        p = dataclasses.replace(p, promotions=())
    return np.array([p.expected(d) for d in days])


@dataclasses.dataclass
class Scores:
    """Per group (class or pattern), per model: the keys' MASE values."""

    mase: dict[str, dict[str, list[float]]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def add(self, groups: tuple[str, ...], model: str, value: float) -> None:
        for g in groups:
            self.mase[g][model].append(value)

    def versus_baseline(self, group: str, model: str) -> float:
        rows = self.mase[group]
        return float(np.mean(rows[model]) / np.mean(rows[BASELINE]) - 1)


def score(scores: Scores, results: list[KeyForecast], pats: dict[str, Pattern],
          demand: dict[str, Series]) -> None:
    for r in results:
        groups = (r.kind, pattern_of(pats[r.key]), "all")
        days = len(demand[r.key])
        held = range(days - len(r.mean), days)
        errors = {**{n: e for n, (e, _) in r.errors.items()}, "chosen": r.errors[r.model][0]}
        for name, promotions in ((TRUTH, True), (NO_PROMOTIONS, False)):
            mean = truth(pats[r.key], held, promotions=promotions)
            errors[name] = float(np.abs(demand[r.key][held.start:] - mean).sum())
        for name, error in errors.items():
            value = r.mase(error)
            if value is not None:  # no in-sample error to scale by: left out, as in summarise
                scores.add(groups, name, value)


@dataclasses.dataclass
class Accuracy:
    """Per (class, method), the baseline's and the chosen models': each key's MASE, RMSSE
    and quantile loss, and the totals of error and demand for the bias."""

    scaled: dict[tuple[str, str], dict[str, list[float]]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    totals: dict[tuple[str, str], list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))

    def add(self, results: list[KeyForecast], demand: dict[str, Series], horizon: int,
            ) -> None:
        for r in results:
            y = demand[r.key]
            y = y[int(np.argmax(y > 0)):]  # from its first demand, as forecast_key reads it
            train = y[:len(y) - ORIGINS * horizon]  # before the backtest's first origin
            squared = float(np.square(train[7:] - train[:-7]).mean()) if len(train) > 7 \
                else 0.0
            held = {BASELINE: forecast_with(BASELINE, y, horizon)[1][-1],
                    "chosen": r.outlook.errors[-1]}
            for method, errors in held.items():
                for group in ((r.kind, method), ("all", method)):
                    t = self.totals[group]
                    t[0] -= float(errors.sum())  # forecast less demand
                    t[1] += float(y[-horizon:].sum())
                    if r.scale > 0 and squared > 0:
                        got = self.scaled[group]
                        got["MASE"].append(float(np.abs(errors).mean()) / r.scale)
                        got["RMSSE"].append(float(np.sqrt(np.square(errors).mean() / squared)))
                        if method == "chosen":
                            got["quantile loss"].append(
                                sum(r.pinball.values()) / (2 * len(r.pinball)) / horizon
                                / r.scale)

    def table(self, title: str) -> Table:
        t = Table(title=title)
        for head in ("class", "method", "keys", "MASE", "RMSSE", "bias", "quantile loss"):
            t.add_column(head, justify="left" if head in ("class", "method") else "right")
        for group in ("smooth", "intermittent", "all"):
            for method in (BASELINE, "chosen"):
                if (group, method) not in self.totals:
                    continue
                got, (error, total) = self.scaled[group, method], self.totals[group, method]
                t.add_row(group, method, f"{len(got['MASE']):,}",
                          *(f"{np.mean(got[m]):.3f}" if got[m] else "-"
                            for m in ("MASE", "RMSSE")),
                          f"{error / total:+.1%}" if total else "-",
                          f"{np.mean(got['quantile loss']):.3f}" if got["quantile loss"]
                          else "-")
        return t


def _cell(scores: Scores, group: str, model: str) -> str:
    values = scores.mase[group].get(model, [])
    if len(values) != len(scores.mase[group][BASELINE]):
        return "-"  # not a candidate of every key in the group
    if model == BASELINE:
        return f"{np.mean(values):.3f}"
    return f"{np.mean(values):.3f} ({scores.versus_baseline(group, model):+.1%})"


def tables(scores: Scores, title: str) -> tuple[Table, Table]:
    """By class and pattern: the baseline, the chosen models and the truth; then every
    candidate by class."""
    groups = [g for g in ("smooth", "intermittent", "plain", "level shift", "launch",
                          "phase-out", "slow mover", "all") if g in scores.mase]
    summary = Table(title=title)
    for head in ("", "keys", BASELINE, "chosen", NO_PROMOTIONS, TRUTH,
                 "chosen's share of\nthe attainable gain"):
        summary.add_column(head, justify="left" if not head else "right")
    for g in groups:
        attainable = scores.versus_baseline(g, NO_PROMOTIONS)
        share = (f"{scores.versus_baseline(g, 'chosen') / attainable:.0%}"
                 if attainable <= _MEANINGFUL else "-")
        summary.add_row(g, f"{len(scores.mase[g][BASELINE]):,}",
                        *(_cell(scores, g, m) for m in (BASELINE, "chosen", NO_PROMOTIONS,
                                                        TRUTH)), share,
                        style="bold" if g == "all" else None)
    models = Table(title="each candidate, held-out MASE")
    for head in ("model", "smooth", "intermittent"):
        models.add_column(head, justify="left" if head == "model" else "right")
    for m in MODELS:
        models.add_row(m, _cell(scores, "smooth", m), _cell(scores, "intermittent", m))
    return summary, models


def main() -> int:
    try:
        return _run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


def _forecast(demand: dict[str, Series], horizon: int,
              workers: int) -> list[KeyForecast] | None:
    """The keys' forecasts (those that could be made); None when SIGINT/SIGTERM stopped
    them, which is then said."""
    try:
        got = forecast_keys(list(demand.items()), horizon, workers)
    except StockflowError as exc:
        print(exc, file=sys.stderr)
        return None
    return [r for r in got.values() if isinstance(r, KeyForecast)]


def _run() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    history_arguments(ap)
    ap.add_argument("--horizon", type=int, default=14)
    args = ap.parse_args()
    console = Console(width=max(Console().width, 120))  # the tables fit unwrapped
    accuracy = Accuracy()
    if args.data != "generator":
        real = load(args.data)
        days = history_days(args.days, real)
        demand = pieces(real, days)
        started = time.monotonic()
        if (results := _forecast(demand, args.horizon, args.workers)) is None:
            return 130
        accuracy.add(results, demand, args.horizon)
        console.print(accuracy.table(
            f"{args.data}: {len(results):,} of {len(demand):,} keys, {days} days, horizon "
            f"{args.horizon}, {time.monotonic() - started:.0f} s: held-out accuracy"))
        return 0
    days = history_days(args.days, None)
    keys = keys_of(args.skus)
    overall = Scores()
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.monotonic()
        pats = patterns(keys, days, seed)  # as `simulate --backfill-days` draws them
        with console.status(f"seed {seed}: drawing {len(keys):,} keys x {days} days"):
            demand = daily_demand(pats, days, seed)
        if (results := _forecast(demand, args.horizon, args.workers)) is None:
            return 130
        seed_scores = Scores()
        for s in (seed_scores, overall):
            score(s, results, pats, demand)
        accuracy.add(results, demand, args.horizon)
        console.print(f"seed {seed}: {len(results):,} of {len(keys):,} keys in "
                      f"{time.monotonic() - started:.0f} s; MASE vs the baseline: "
                      f"chosen {seed_scores.versus_baseline('all', 'chosen'):+.1%}, "
                      f"truth without promotions "
                      f"{seed_scores.versus_baseline('all', NO_PROMOTIONS):+.1%}, truth "
                      f"{seed_scores.versus_baseline('all', TRUTH):+.1%}")
    for t in tables(overall, f"held-out MASE against the baseline, seeds {args.seeds}, "
                             f"{days} days, horizon {args.horizon}"):
        console.print(t)
    console.print(accuracy.table(f"generator, seeds {args.seeds}: held-out accuracy"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
