"""The HTTP API, the webhook relay and the order coordinator beside the main job, as child
processes (`stockflow api`, `stockflow relay`, `stockflow coordinate`) on this run's Kafka
and Postgres, with a demo read key, so a newcomer can `curl` live stock while the
simulation runs."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stockflow import StockflowError
from stockflow.adapters.db import api_keys
from stockflow.adapters.ports import free_port, in_use
from stockflow.adapters.settings import Settings
from stockflow.contract.api_keys import new_token, token_hash
from stockflow.entrypoints.app import database

__all__ = ["Companions", "companions"]


@dataclass(frozen=True)
class Companions:
    """Where the companions of the main job are: the API, its read token, the metrics, the
    settings file and the logs."""

    api_url: str
    read_token: str
    relay_metrics_url: str
    coordinator_metrics_url: str
    env_file: Path  # this run's settings, to point other `stockflow` commands at it
    log_file: Path  # the children's logs

    def banner(self, metrics_url: str) -> list[str]:
        """Where everything is, `metrics_url` being the processor's /metrics."""
        return [f"API {self.api_url}/docs  read token {self.read_token}",
                f"  curl -H 'Authorization: Bearer {self.read_token}' "
                f"{self.api_url}/v1/alerts",
                f"processor metrics {metrics_url}  relay metrics {self.relay_metrics_url}"
                f"  coordinator metrics {self.coordinator_metrics_url}",
                f"logs {self.log_file}  other commands: set -a; . {self.env_file}"]


@dataclass
class _Child:
    """`stockflow <command>`, listening on the port of its setting `port_of`: the one
    wanted, or with 0 a free one picked here and handed to it."""

    command: str
    port_of: str  # e.g. api_port
    wanted: int
    host: str  # where it binds
    answers: str  # a path that answers once it is up
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.port = self.wanted or free_port(self.host)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stockflow", self.command],
            env={**env, Settings.variable(self.port_of): str(self.port)},
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self, deadline: float) -> bool:
        """Whether it answers before `deadline` (False at once if it exits)."""
        assert self.proc is not None
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url(self.answers), timeout=1):  # noqa: S310 - our own child, on loopback
                    return True
            except OSError:
                time.sleep(0.3)
        return False

    def lost_its_port(self) -> bool:
        """Another process took the port picked for it before it could bind it."""
        return not self.wanted and in_use(self.host, self.port)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def reap(self) -> None:
        """Wait for it to exit, killing it after 30 s."""
        if self.proc is None:
            return
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _demo_key(settings: Settings) -> str:
    made = new_token()
    with database(settings) as conn:
        api_keys.add(conn, key_id=made.id, name="demo", digest=token_hash(made.token),
                     scopes=["read"])
    return made.token


def _bring_up(children: list[_Child], env: dict[str, str], log: IO[bytes],
              log_file: Path) -> None:
    """Start every child, then wait until each answers. Picking a free port and the child
    binding it are two steps: one whose port another process took in between is started
    again on another."""
    for child in children:
        child.start(env, log)
    deadline = time.monotonic() + 60
    for child in children:
        ready = child.up(deadline)
        for _ in range(2):  # a port may be lost again, not for ever
            if ready or not child.lost_its_port():
                break
            child.reap()
            child.start(env, log)
            ready = child.up(deadline)
        if not ready:
            assert child.proc is not None
            code = child.proc.poll()
            what = (f"exited with status {code}" if code is not None
                    else "did not answer within 60 s")
            raise StockflowError(f"stockflow {child.command} {what}: see {log_file}")


@contextmanager
def companions(settings: Settings) -> Iterator[Companions]:
    """Start the API, the relay and the coordinator; stop them (SIGTERM, then SIGKILL) when
    leaving. Each takes the port its setting names; with 0 (what `stockflow up` uses for a
    port the user did not set) a free one."""
    children = [_Child("api", "api_port", settings.api_port, settings.api_host, "/readyz"),
                _Child("relay", "relay_metrics_port", settings.relay_metrics_port,
                       settings.metrics_host, "/healthz"),
                _Child("coordinate", "coordinator_metrics_port",
                       settings.coordinator_metrics_port, settings.metrics_host, "/healthz")]
    key = (settings.secret_key.get_secret_value() if settings.secret_key
           else base64.b64encode(secrets.token_bytes(32)).decode())  # for this run only
    workdir = Path(tempfile.mkdtemp(prefix="stockflow-up-"))
    env_file, log_file = workdir / "env", workdir / "companions.log"
    # the children work on this job's settings, with the run's secret key
    child_env = {**settings.environment(), Settings.variable("secret_key"): key}
    env_file.touch(mode=0o600)
    token = _demo_key(settings)
    with log_file.open("ab") as log:
        try:
            _bring_up(children, {**os.environ, **child_env}, log, log_file)
            child_env |= {Settings.variable(c.port_of): str(c.port) for c in children}
            env_file.write_text("".join(f"{k}='{v}'\n" for k, v in child_env.items()))
            api, relay, coordinator = children
            yield Companions(api.url(), token, relay.url("/metrics"),
                             coordinator.url("/metrics"), env_file, log_file)
        finally:
            for child in children:  # all told first: they stop side by side
                child.terminate()
            for child in children:
                child.reap()
            # it holds this run's secret key and database URL, and points at nothing now
            env_file.unlink(missing_ok=True)
            if not os.fstat(log.fileno()).st_size:  # a log with something in it is kept
                shutil.rmtree(workdir, ignore_errors=True)
