"""The README keeps its promises: short, every link resolves, and the tour runs as written.

The tour's ```sh blocks are run in order, as one bash script from the repository's root,
exactly as a reader pastes them into one shell, against the session's Kafka and Postgres.
The two long-running commands at the top (`./scripts/run`, `./scripts/test`) are not run
here: the first runs until Ctrl-C and the second is the suite itself; the test checks that
they exist and are executable. What `./scripts/run` runs, `stockflow up --simulate`, is
tested in tests/e2e/test_main_job.py; `./scripts/test` is what CI runs (.ci/run).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

from stockflow.devtools.localenv import LocalServices, free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 160
TOUR_SCRATCH = Path("/tmp")  # noqa: S108 - where the README's tour writes, as a reader's would
TOUR_SECONDS = 60  # about 12 s on a quiet 2-core machine; the rest is headroom under load

# [text](target) and [text]: target; images too. Targets with a scheme are not ours to check.
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _docs() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _without_code(text: str) -> str:
    """The prose: links shown inside code blocks or spans are examples, not links."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def _sh_blocks(text: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == "sh"]


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): "
        "a long section belongs in docs/")


def _anchors(doc: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", doc.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        if seen[slug]:
            seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in _docs():
        prose = _without_code(doc.read_text())
        for target in _INLINE_LINK.findall(prose) + _REFERENCE_LINK.findall(prose):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # a URL: not ours to check
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            if not linked.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_long_running_commands_exist() -> None:
    first = _sh_blocks(README.read_text())[0]
    scripts = re.findall(r"^(\./scripts/\S+)", first, re.MULTILINE)
    assert scripts == ["./scripts/run", "./scripts/test"]
    for script in scripts:
        path = ROOT / script
        assert path.is_file(), script
        assert os.access(path, os.X_OK), f"{script} is not executable"


def test_the_tour_runs_as_written(services: LocalServices) -> None:
    blocks = _sh_blocks(README.read_text())
    tour = [b for b in blocks if not b.lstrip().startswith("./scripts/")]
    assert len(tour) >= 5, "the tour's ```sh blocks were not found"
    # -e: a failing command fails the tour, as a reader would notice; -u: so does a typo'd
    # variable; pipefail: a failing command before a pipe (`webhooks add | awk`) too.
    script = "set -euo pipefail\n" + "\n".join(tour)
    # The reader's shell: no stockflow settings but the services, as the tour asks; a
    # setting of whoever runs pytest (a port, a prefix) would not be the reader's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFLOW_")}
    env |= {"STOCKFLOW_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
            "STOCKFLOW_DATABASE_URL": services.database_url,
            "STOCKFLOW_SESSION_TIMEOUT_MS": "6000", "STOCKFLOW_LOG_LEVEL": "WARNING",
            # free ports: the tour's defaults may be taken on a shared machine
            "TOUR_API_PORT": str(free_port()), "TOUR_HOOK_PORT": str(free_port())}
    # its own session, so that whatever the tour left running is stopped with it
    proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TOUR_SECONDS)
    except subprocess.TimeoutExpired as slow:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        _remove_scratch(out)
        raise AssertionError(f"the tour took over {TOUR_SECONDS} s:\n{out}\n{err[-3000:]}") \
            from slow
    finally:
        # whatever the tour left running; usually nothing, as its last line stops it all
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        _check_tour(proc.returncode, out, err)
    finally:
        _remove_scratch(out)


def _check_tour(code: int, out: str, err: str) -> None:
    """What each step promises the reader."""
    assert code == 0, f"the tour failed ({code}):\n{out}\n{err[-3000:]}"
    assert re.search(r"created tour\d+\.orders", out), out  # topics
    assert "applied 0001_stock.sql" in out  # migrations
    assert re.search(r"^endpoint ep_[0-9a-f]+$", out, re.MULTILINE)  # the webhook endpoint
    assert "published 1 events, 0 rejected" in err
    for field, value in (("on_hand", 40), ("reserved", 5), ("available", 35)):
        assert re.search(rf"^\s+{field}\s+{value}$", out, re.MULTILINE), out  # the stock lookup
    assert '"outcome":"applied"' in out  # the HTTP call
    assert re.search(r"^webhook stock\.changed TOUR-1@WH-1 id=\S+$", out, re.MULTILINE), out
    assert "stock by warehouse" in out  # the report
    chart = re.search(r"^chart written to (\S+)$", err, re.MULTILINE)
    assert chart, err
    assert Path(chart[1]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def _remove_scratch(out: str) -> None:
    """The files the tour names after its run, $RUN. Its topics and schema stay in the
    session's services, as every test's do."""
    for run in set(re.findall(r"created (tour\d+)\.", out)):
        for scratch in (f"{run}.jsonl", f"{run}-stock.png"):
            (TOUR_SCRATCH / scratch).unlink(missing_ok=True)
