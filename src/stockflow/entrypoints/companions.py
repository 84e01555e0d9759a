"""The HTTP API and the webhook relay beside the main job, as child processes
(`stockflow api`, `stockflow relay`) on this run's Kafka and Postgres, with a demo read key,
so a newcomer can `curl` live stock while the simulation runs."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stockflow.adapters.db import api_keys
from stockflow.contract.api_keys import new_token, token_hash
from stockflow.devtools.localenv import free_port
from stockflow.entrypoints.app import database
from stockflow.settings import Settings

__all__ = ["Companions", "companions"]


@dataclass(frozen=True)
class Companions:
    api_url: str
    read_token: str
    relay_metrics_url: str
    env_file: Path  # this run's settings, to point other `stockflow` commands at it
    log_file: Path  # the children's logs

    def banner(self) -> list[str]:
        return [f"API {self.api_url}/docs  read token {self.read_token}",
                f"  curl -H 'Authorization: Bearer {self.read_token}' "
                f"{self.api_url}/v1/alerts",
                f"relay metrics {self.relay_metrics_url}  logs {self.log_file}  "
                f"other commands: set -a; . {self.env_file}"]


def _port(wanted: int, host: str) -> int:
    """`wanted` if nothing listens there, else a free one."""
    with socket.socket() as s:
        try:
            s.bind((host, wanted))
        except OSError:
            return free_port()
    return wanted


def _demo_key(settings: Settings) -> str:
    made = new_token()
    with database(settings) as conn:
        api_keys.add(conn, key_id=made.id, name="demo", digest=token_hash(made.token),
                     scopes=["read"])
    return made.token


def _ready(url: str, deadline: float, child: subprocess.Popen[bytes]) -> None:
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own child, on loopback
                return
        except OSError:
            time.sleep(0.3)


@contextmanager
def companions(settings: Settings) -> Iterator[Companions]:
    """Start the API and the relay; stop them (SIGTERM, then SIGKILL) when leaving."""
    host = "127.0.0.1"
    api_port = _port(settings.api_port, settings.api_host or host)
    relay_port = _port(settings.relay_metrics_port, settings.metrics_host or host)
    key = (settings.secret_key.get_secret_value() if settings.secret_key
           else base64.b64encode(secrets.token_bytes(32)).decode())  # for this run only
    workdir = Path(tempfile.mkdtemp(prefix="stockflow-up-"))
    env_file, log_file = workdir / "env", workdir / "companions.log"
    names = ("KAFKA_BOOTSTRAP", "DATABASE_URL", "TOPIC_PREFIX", "DATABASE_SCHEMA")
    child_env = {f"STOCKFLOW_{n}": os.environ[f"STOCKFLOW_{n}"] for n in names
                 if f"STOCKFLOW_{n}" in os.environ}
    child_env |= {"STOCKFLOW_SECRET_KEY": key, "STOCKFLOW_API_PORT": str(api_port),
                  "STOCKFLOW_RELAY_METRICS_PORT": str(relay_port)}
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}='{v}'\n" for k, v in child_env.items()))
    token = _demo_key(settings)
    children: list[subprocess.Popen[bytes]] = []
    with log_file.open("ab") as log:
        try:
            for command in ("api", "relay"):  # one by one: a failed start stops the first
                children.append(subprocess.Popen(  # noqa: PERF401
                    [sys.executable, "-m", "stockflow", command],
                    env={**os.environ, **child_env}, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log))
            api_url = f"http://{host}:{api_port}"
            _ready(f"{api_url}/readyz", time.monotonic() + 60, children[0])
            yield Companions(api_url, token, f"http://{host}:{relay_port}/metrics", env_file,
                             log_file)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            # it holds this run's secret key and database URL, and points at nothing now
            env_file.unlink(missing_ok=True)
            if not os.fstat(log.fileno()).st_size:  # a log with something in it is kept
                shutil.rmtree(workdir, ignore_errors=True)
