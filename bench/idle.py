"""What stockflow costs with nothing to do: each process's CPU with no traffic.

    .venv/bin/python bench/idle.py [--seconds 60] [--settle 20] [--processors 2]

A shop's quiet hours should cost next to nothing. This starts what a deployment runs
(`--processors` processors, the order coordinator, the webhook relay with one endpoint
registered, and the HTTP API) on fresh topics and a fresh schema, waits `--settle`
seconds for their groups to form, then reads each process's CPU time from /proc over
`--seconds` seconds in which nothing is published, and prints it in cores (CPU seconds
per second; the issue's target is 0.02 per stockflow process). The broker's and
Postgres's are printed too; they are shared with whatever else uses the services, so
run it on a quiet machine. Ctrl-C or SIGTERM stops it and its processes.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import env_of, prepare, say, settings_for, start, wait_ready
from pydantic import SecretStr

from stockflow.adapters.db import store
from stockflow.adapters.ports import free_port
from stockflow.adapters.settings import Settings
from stockflow.devtools.localenv import local_services
from stockflow.usecases.webhooks import add_endpoint

_TICK = os.sysconf("SC_CLK_TCK")
_KEY = base64.b64encode(bytes(range(32))).decode()  # encrypts webhook secrets at rest


def cpu_of(pid: int) -> float:
    """CPU seconds the process `pid` (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def pids_of(marker: str) -> list[int]:
    """The processes whose command line holds `marker` (the broker, Postgres's backends)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured, with no traffic")
    ap.add_argument("--settle", type=float, default=20.0,
                    help="seconds to wait after start-up before measuring")
    ap.add_argument("--processors", type=int, default=2)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with local_services() as found:
            s = settings_for(Settings(kafka_bootstrap=found.kafka_bootstrap,
                                      database_url=SecretStr(found.database_url)), "idle")
            prepare(s, 6)
            hooks = {"STOCKFLOW_SECRET_KEY": _KEY, "STOCKFLOW_WEBHOOK_ALLOW_HTTP": "true",
                     "STOCKFLOW_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32"}
            relay = s.model_copy(update={"secret_key": SecretStr(_KEY), "webhook_allow_http": True,
                                         "webhook_allow_networks": "127.0.0.1/32"})
            with store.connect(s.dsn(), s.database_schema, autocommit=True) as conn:
                add_endpoint(conn, relay, url="http://127.0.0.1:9/hook", events=["stock.*"],
                             keys=["*"], description="bench")
            api_port = free_port()
            for i in range(args.processors):
                procs[f"processor {i + 1}"] = start(s, "process")
            procs["coordinator"] = start(s, "coordinate",
                                         STOCKFLOW_COORDINATOR_METRICS_PORT="0")
            procs["relay"] = subprocess.Popen(
                [sys.executable, "-m", "stockflow", "relay"], stdout=subprocess.DEVNULL,
                env=env_of(s, **hooks, STOCKFLOW_RELAY_METRICS_PORT="0",
                           STOCKFLOW_RELAY_GROUP_ID=f"{s.group_id}-relay"))
            procs["api"] = start(s, "api", STOCKFLOW_API_HOST="127.0.0.1",
                                 STOCKFLOW_API_PORT=str(api_port))
            wait_ready(f"http://127.0.0.1:{api_port}/readyz", procs["api"])
            say(f"started {', '.join(procs)}; settling for {args.settle:.0f} s")
            time.sleep(args.settle)
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited ({proc.returncode})")
            shared = {"broker": pids_of("kafka.Kafka"), "postgres": pids_of("postgres")}
            before = {name: cpu_of(p.pid) for name, p in procs.items()}
            shared_before = {role: sum(_alive_cpu(pid) for pid in pids)
                             for role, pids in shared.items()}
            say(f"measuring {args.seconds:.0f} s with no traffic")
            began = time.monotonic()
            time.sleep(args.seconds)
            span = time.monotonic() - began
            print(f"stockflow with no traffic for {span:.0f} s: cores used (CPU s per s)")
            for name, proc in procs.items():
                print(f"  {name:<13} {(cpu_of(proc.pid) - before[name]) / span:.4f}")
            for role, pids in shared.items():
                used = sum(_alive_cpu(pid) for pid in pids) - shared_before[role]
                print(f"  {role:<13} {used / span:.4f}  (shared with other users of it)")
    except KeyboardInterrupt:
        say("stopped")
        return 130
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


def _alive_cpu(pid: int) -> float:
    try:
        return cpu_of(pid)
    except OSError:
        return 0.0  # a backend that ended meanwhile: its time is gone from both readings


if __name__ == "__main__":
    sys.exit(main())
