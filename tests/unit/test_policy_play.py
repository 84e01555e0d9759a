"""bench/policy.py's replay of held-out demand through a reorder policy, on demand whose
outcome is known by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from stockflow.planning.reorder import Suggestion

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench's modules import each other by name
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


policy = _bench("policy")
RULES = policy.Play(lead_time=7, review=7, cycles=10, service_level=0.95)


def _up_to(level: int) -> object:
    def ask(_day: int, position: int) -> Suggestion:
        return Suggestion(7, 7, 0.95, 0.0, 0, level, level, position, max(level - position, 0))
    return ask


def test_a_level_covering_lead_time_and_review_never_runs_out() -> None:
    demand = np.full(RULES.days, 10.0)
    got = policy.play(demand, _up_to(140), RULES, 140)
    assert got.cycles == 8 and got.stocked_out == 0  # between arrivals on days 14, ..., 70
    assert got.served == got.demand == 10.0 * RULES.days
    assert got.orders == 9  # every review but the first tops up a week's demand


def test_a_level_short_of_lead_time_and_review_runs_out_again_and_again() -> None:
    # orders alternate between 70 and 30 units: every other cycle starts with 30 on hand
    # for a week's demand of 70
    demand = np.full(RULES.days, 10.0)
    got = policy.play(demand, _up_to(100), RULES, 100)
    assert (got.cycles, got.stocked_out) == (8, 4)
    assert got.served < got.demand
