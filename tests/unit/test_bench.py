"""bench/ without services: every module imports, every command answers --help, and the
parts that compute figures from data run on tiny inputs.

The benchmark itself needs Kafka and Postgres and minutes, so it is run by hand, not in
the suite; this keeps it from rotting between runs (an import or an option that no longer
exists, a report line that no longer formats) in a few seconds.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from stockflow.domain.effects import Outcome
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, new_state
from stockflow.planning.reorder import Suggestion
from stockflow.settings import Settings
from tests.factories import event

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p.stem for p in BENCH.glob("*.py"))
# Commands a person runs, with options; the children that run.py starts and configures
# through the environment take no arguments at all (an unknown one is ignored, so --help
# would start them on the default settings: not run here).
COMMANDS = ("api", "console", "decide", "forecasts", "idle", "instructions", "policy", "run",
            "webhooks")
CHILDREN = ("floor", "naive", "peer_faust")


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """bench's modules, imported as its scripts import each other (by bare name from
    bench/), then taken out of sys.modules so no later test sees a module named `run`."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: __import__(name) for name in MODULES}
    finally:
        sys.path.remove(str(BENCH))
        for name in MODULES:
            sys.modules.pop(name, None)


def test_every_script_is_a_command_or_a_child() -> None:
    # a new script must be placed in one list or the other, so that its --help is tried
    mains = {name for name in MODULES
             if '__name__ == "__main__"' in (BENCH / f"{name}.py").read_text()}
    assert mains == set(COMMANDS) | set(CHILDREN)


def test_every_module_imports(bench: dict[str, ModuleType]) -> None:
    for name, module in bench.items():
        assert Path(module.__file__ or "").parent == BENCH, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_answers_help(name: str, bench: dict[str, ModuleType],
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        bench[name].main()
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {name}.py")


def test_decide_runs_as_a_script_on_a_tiny_workload() -> None:
    # a child process: decide stubs the store's fetch and tunes the GC, process-wide
    done = subprocess.run([sys.executable, str(BENCH / "decide.py"), "--events", "200",
                           "--repeat", "1"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("decide, us per event (")


@pytest.mark.filterwarnings("error")  # a mean of nothing would print "nan" as a figure
def test_forecast_accuracy_on_a_tiny_history(bench: dict[str, ModuleType]) -> None:
    fc = bench["forecasts"]
    keys = [f"SKU-{s:05d}@WH-{w}" for s in range(2) for w in (1, 2, 3)]
    days, horizon, seed = 60, 7, 3  # seed 3 draws both smooth and intermittent keys here
    pats = fc.patterns(keys, days, seed)
    demand = fc.daily_demand(pats, days, seed)
    assert sorted(demand) == keys
    assert all(len(d) == days and (d >= 0).all() for d in demand.values())
    got = fc.forecast_keys(list(demand.items()), horizon, 1)
    results = [r for r in got.values() if isinstance(r, fc.KeyForecast)]
    assert {r.kind for r in results} == {"smooth", "intermittent"}
    scores = fc.Scores()
    fc.score(scores, results, pats, demand)
    scored = scores.mase["all"]
    # every key scored has its baseline, its chosen model and both truths, all finite
    for name in (fc.BASELINE, "chosen", fc.TRUTH, fc.NO_PROMOTIONS):
        assert len(scored[name]) == len(scored[fc.BASELINE]) > 0, name
        assert all(v >= 0 for v in scored[name]), name
    out = io.StringIO()
    console = Console(file=out, width=160)
    for table in fc.tables(scores, "tiny"):
        console.print(table)
    shown = out.getvalue()
    assert "tiny" in shown
    assert "intermittent" in shown
    assert "nan" not in shown


def test_percentiles_and_runs_apart(bench: dict[str, ModuleType]) -> None:
    common = bench["common"]
    values = [float(v) for v in range(1, 101)]
    assert common.pct(values, 0.5) == 51.0
    assert common.pct(values, 0.99) == 100.0
    assert common.pct([3.0], 0.95) == 3.0
    a, b = (common.settings_for(Settings(), "x") for _ in range(2))
    assert a.topic_prefix != b.topic_prefix
    assert a.database_schema != b.database_schema
    assert a.group_id != b.group_id
    assert common.cpu_seconds()["driver"] > 0  # this process has used some CPU


def test_report_lines(bench: dict[str, ModuleType]) -> None:
    run, latency = bench["run"], bench["latency"]
    # run.py's report lines: private to the script, and what a person reads of a run
    ratio, latency_line, breakdown_of = (
        run._ratio, run._latency_line, run._breakdown)  # noqa: SLF001
    assert ratio(10.0, 4.0) == "2.5x"
    assert ratio(10.0, 0.0) == "-"
    got = latency.Latency(rate=1000, achieved=998.0, changed=[0.010, 0.020, 0.030],
                          stages={"decide": (0.5, 100)}, gc={"0": (0.002, 4)},
                          batch_messages=(1000.0, 100), cpu={"processor": 2.0, "broker": 0.0},
                          offered_seconds=10.0)
    line = latency_line("stockflow", got)
    assert "stockflow at  1,000/s (offered 998)" in line
    assert "20/30/30" in line
    assert "-/-/-" in line  # nothing accepted
    breakdown = breakdown_of([got])
    assert "decide 5.0;" in breakdown[1]  # 0.5 s over 100 batches
    assert "10 messages per batch; GC paused 2 ms in all" in breakdown[1]
    assert "processor 200 " in breakdown[2]  # 2 s over 9,980 offered events
    assert "broker" not in breakdown[2]


def test_peer_rows_carry_what_the_rules_decided(bench: dict[str, ModuleType]) -> None:
    peer = bench["peer_faust"]
    policy = Policy()
    state = new_state("SKU-1", "WH-1", policy)
    for ev in (event("receipt.received", receipt_id="R1", quantity=5),
               event("order.placed", order_id="O1", line_id="1", quantity=2)):
        decision = apply(state, ev, policy)
        assert decision.outcome is Outcome.APPLIED
        assert decision.ledger is not None
        state = peer.merged(state, decision)
        ledger = peer.ledger_row(state.key, decision.ledger)
        assert ledger[:4] == (state.key, state.version, ev.id, ev.type)
    assert len(state.lines) == 1
    row = peer.stock_row(state)
    assert row[:6] == ("SKU-1@WH-1", "SKU-1", "WH-1", 5, 2, 0)


def _up_to(level: int) -> Any:
    """A policy that tops the position up to `level` at every review."""
    def ask(_day: int, position: int) -> Suggestion:
        return Suggestion(7, 7, 0.95, 0.0, 0, level, level, position, max(level - position, 0))
    return ask


def test_a_level_covering_lead_time_and_review_never_runs_out(
        bench: dict[str, ModuleType]) -> None:
    policy = bench["policy"]
    rules = policy.Play(lead_time=7, review=7, cycles=10, service_level=0.95)
    demand = np.full(rules.days, 10.0)
    got = policy.play(demand, _up_to(140), rules, 140)
    assert got.cycles == 8 and got.stocked_out == 0  # between arrivals on days 14, ..., 70
    assert got.served == got.demand == 10.0 * rules.days
    assert got.orders == 9  # every review but the first tops up a week's demand


def test_a_level_short_of_lead_time_and_review_runs_out_again_and_again(
        bench: dict[str, ModuleType]) -> None:
    # orders alternate between 70 and 30 units: every other cycle starts with 30 on hand
    # for a week's demand of 70
    policy = bench["policy"]
    rules = policy.Play(lead_time=7, review=7, cycles=10, service_level=0.95)
    got = policy.play(np.full(rules.days, 10.0), _up_to(100), rules, 100)
    assert (got.cycles, got.stocked_out) == (8, 4)
    assert got.served < got.demand


def test_real_sets_are_whole_units_a_day_with_no_day_missing(
        bench: dict[str, ModuleType]) -> None:
    real = bench["realdata"]
    sets = {name: real.load(name) for name in real.SETS}
    for name, got in sets.items():
        assert got.series, name
        for key, y in got.series.items():
            assert len(y) == got.days, key  # every key from the same first day to the last
            assert (y >= 0).all() and (y == np.round(y)).all(), key
    chicago, flights = sets["chicago"], sets["flights"]
    assert (len(chicago.series), chicago.days) == (20, 5698)
    assert str(chicago.first) == "2001-01-08"  # the first date less the 14 days' lag
    assert 1_000 < float(chicago.series["Austin"].mean()) < 10_000  # riders, not thousands
    assert (flights.days, str(flights.first)) == (365, "2013-01-01")
    assert sum(float(y.sum()) for y in flights.series.values()) == 336_776  # every flight
    assert flights.series["UA EWR-ORD"].min() > 0  # a big route flown every day


def test_real_series_are_cut_into_consecutive_pieces_ending_with_them(
        bench: dict[str, ModuleType]) -> None:
    real = bench["realdata"]
    y = np.arange(10.0)
    got = real.pieces(real.Demand(date(2020, 1, 1), {"A": y}), 4)
    assert list(got) == ["A from 2020-01-03", "A from 2020-01-07"]  # 2 days left out
    assert got["A from 2020-01-07"].tolist() == [6.0, 7.0, 8.0, 9.0]
    with pytest.raises(ValueError, match="longer than every series"):
        real.pieces(real.Demand(date(2020, 1, 1), {"A": y}), 11)


def test_stock_is_compared_at_the_service_the_new_rule_achieved(
        bench: dict[str, ModuleType]) -> None:
    policy = bench["policy"]

    def totals(chosen: tuple[int, float], seeds: tuple[int, float]) -> Any:
        # 100 cycles, 100 units of demand: (cycles stocked out, units on hand summed)
        got = policy.Totals()
        got.add("smooth", {
            name: policy.Outcome(cycles=100, stocked_out=out, demand=100.0, served=100.0,
                                 on_hand=held)
            for name, (out, held) in ((policy.CANDIDATE, chosen), (policy.SEEDS_RULE, seeds))})
        return got

    # the seed's method: 88% of cycles with 6 days of stock, 96% with 10; the chosen models
    # reach 92% with 7.2: the seed's would hold 8 there
    table = policy.at_equal_service({0.9: totals((8, 720.0), (12, 600.0)),
                                     0.95: totals((2, 1100.0), (4, 1000.0))}, "tiny")
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    rows = [line for line in out.getvalue().splitlines() if "smooth" in line]
    assert [cell.strip() for cell in rows[0].split("│")[1:-1]] == [
        "smooth", "90%", "92.0%", "7.2", "88.0%", "6.0", "8.0", "-10%"]
    # at the 95% target the chosen models reach 98%, beyond the seed's points: no figure
    assert [cell.strip() for cell in rows[1].split("│")[-3:-1]] == ["-", "-"]


def test_logged_lines_go_to_the_log_not_the_terminal(tmp_path: Path) -> None:
    # a child process: log_to configures logging process-wide. Its consumer finds no broker
    # (a closed port), which librdkafka says; so does a child it starts, on its stderr.
    log = tmp_path / "run.log"
    script = (
        "import sys, time\n"
        "from common import kafka_config, log_to, spawn\n"
        "from confluent_kafka import Consumer\n"
        f"log_to(__import__('pathlib').Path({str(log)!r}))\n"
        "cons = Consumer(kafka_config(**{'bootstrap.servers': '127.0.0.1:1',"
        " 'group.id': 'g'}))\n"
        "deadline = time.monotonic() + 20\n"
        f"while 'Connection refused' not in open({str(log)!r}).read():\n"
        "    assert time.monotonic() < deadline, 'librdkafka said nothing'\n"
        "    cons.poll(0.2)\n"
        "cons.close()\n"
        "spawn([sys.executable, '-c', 'import sys; print(\"child says\", file=sys.stderr)'],"
        " {}).wait()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=BENCH, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    logged = log.read_text()
    assert "bench.librdkafka" in logged
    assert "child says" in logged


def test_instructions_child_announces_each_region_and_waits() -> None:
    # what callgrind counts is between a region's "ready" and "done": here nobody counts,
    # and each line is answered at once
    child = subprocess.Popen([sys.executable, str(BENCH / "instructions.py"), "--inside",
                              "--events", "100"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    assert child.stdout is not None
    said = []
    for line in child.stdout:
        said.append(line.strip())
        if not line.startswith("facts "):
            child.stdin.write("go\n")
            child.stdin.flush()
    assert child.wait(60) == 0
    regions = [f"{when} {name}" for name in ("empty", "decide", "commit formatting")
               for when in ("ready", "done")]
    assert said[:-1] == regions
    facts = json.loads(said[-1].removeprefix("facts "))
    assert facts["messages"] >= 100  # the stream after the first 1,000, in batches of 100
    assert facts["batches"] == -(-facts["messages"] // 100)
    assert facts["stockflow"].endswith("stockflow/__init__.py")


def test_instructions_read_each_region_from_its_dump(bench: dict[str, ModuleType],
                                                     tmp_path: Path) -> None:
    instructions = bench["instructions"]
    for n, (name, total) in enumerate([("commit_formatting", 900), ("empty", 20),
                                       ("decide", 5000)], start=1):
        (tmp_path / f"callgrind.out.{n}").write_text(
            f"# callgrind format\npart: {n}\ndesc: Trigger: dump {name}\n\n"
            f"events: Ir\nsummary: {total}\n\nfn=(1) x\n0 {total}\n\ntotals: {total}\n")
    got = instructions.regions(sorted(tmp_path.iterdir()))
    assert got == {"empty": 20, "decide": 5000, "commit formatting": 900}
    (tmp_path / "callgrind.out.1").unlink()
    with pytest.raises(SystemExit, match="no callgrind dump for commit formatting"):
        instructions.regions(sorted(tmp_path.iterdir()))
