"""bench/run.py told to stop with SIGTERM mid-drain stops as on Ctrl-C: its processors
stop, it exits at once, nothing it started is left running, and its terminal shows its
progress only (what the processes and Kafka clients log is in its log file)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from stockflow.devtools.localenv import LocalServices

BENCH = Path(__file__).resolve().parents[2] / "bench"
_LOGGED = re.compile(r"^%\d\||rdkafka#|^\{\"time\"")  # librdkafka's own, or a JSON log line


def _session_members(sid: int) -> list[str]:
    """The command lines of the live processes in session `sid`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: the session
            found.append(cmd)
    return found


def test_sigterm_mid_drain_stops_everything_it_started(services: LocalServices,
                                                        tmp_path: Path) -> None:
    env = {**os.environ, "STOCKFLOW_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
           "STOCKFLOW_DATABASE_URL": services.database_url}
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, str(BENCH / "run.py"), "--parts", "throughput", "--events", "20000",
         "--warmup", "0", "--members", "1", "--partitions", "2", "--log", str(log)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own session: whatever it starts is found by it
    lines: list[str] = []
    draining = threading.Event()

    def read() -> None:
        assert run.stderr is not None
        for line in run.stderr:
            lines.append(line)
            if re.match(r"  stockflow: [\d,]+/[\d,]+ committed", line):
                draining.set()  # its processor is running

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert draining.wait(90), "".join(lines)
        assert len(_session_members(run.pid)) > 1  # the driver and its processor
        run.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        run.wait(30)
        took = time.monotonic() - stopped_at
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    reader.join(5)
    assert run.returncode == 130, "".join(lines)
    assert lines[-1] == "stopped\n"
    assert took < 20
    assert _session_members(run.pid) == []  # its processors are gone too
    assert lines[0] == f"logs: {log}\n"
    assert not [line for line in lines if _LOGGED.search(line)]
    assert log.exists()
