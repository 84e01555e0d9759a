"""What a person reads when the command line refuses: one sentence that says what to do,
never a traceback; sentences on a terminal, JSON lines when piped. None needs Kafka or
Postgres: each is refused before anything connects."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from stockflow.devtools.localenv import free_port


@contextlib.contextmanager
def _listening() -> Iterator[int]:
    """A port another process holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield int(sock.getsockname()[1])


def _stockflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stockflow", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_busy_port_that_was_set_names_the_setting_to_change() -> None:
    with _listening() as port:
        for command, setting in (("process", "METRICS_PORT"), ("api", "API_PORT"),
                                 ("relay", "RELAY_METRICS_PORT"),
                                 ("up", "METRICS_PORT")):  # before Kafka and Postgres start
            done = _stockflow(command, env={f"STOCKFLOW_{setting}": str(port)})
            assert done.returncode == 2, (command, done.stderr)
            [line] = done.stderr.splitlines()  # piped: one JSON line
            assert (f'"msg": "port {port} is in use: set STOCKFLOW_{setting} to a free port '
                    f'(0 picks one)"') in line, (command, line)
        up = _stockflow("up", "--simulate", env={"STOCKFLOW_API_PORT": str(port)})
        assert up.returncode == 2 and "set STOCKFLOW_API_PORT" in up.stderr, up.stderr


def test_on_a_terminal_an_error_is_a_sentence() -> None:
    with _listening() as port:
        reader, writer = pty.openpty()
        job = subprocess.Popen([sys.executable, "-m", "stockflow", "process"],
                               env={**os.environ, "STOCKFLOW_METRICS_PORT": str(port)},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=writer)
        os.close(writer)
        said = b""
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(reader, 4096):
                said += chunk
        os.close(reader)
    assert job.wait(60) == 2
    assert said.decode().splitlines() == [
        f"error: port {port} is in use: set STOCKFLOW_METRICS_PORT to a free port "
        "(0 picks one)"]


def test_a_forty_digit_quantity_is_out_of_range_not_a_fraction(tmp_path: Path) -> None:
    receipts = tmp_path / "receipts.csv"
    receipts.write_text("sku,warehouse,quantity\nA,WH-1,5\nB,WH-1," + "9" * 40 + "\n")
    done = _stockflow("import", str(receipts), "--kind", "receipts", env={})
    assert done.returncode == 2, done.stderr
    assert ("receipts.csv:3: quantity_out_of_range: quantity 999999999999... (40 digits) "
            "is out of range (1..1,000,000)") in done.stderr.splitlines()
    assert "not a whole number" not in done.stderr
