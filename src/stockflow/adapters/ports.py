"""The ports stockflow listens on. One that something else holds is refused in one line
naming the setting to change, not with a traceback; port 0 means any free one."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from stockflow import StockflowError

__all__ = ["PortInUseError", "explained", "free_port", "in_use", "require_free"]


class PortInUseError(StockflowError):
    """A configured port something else listens on."""

    def __init__(self, port: int, setting: str) -> None:
        super().__init__(f"port {port} is in use: set {setting} to a free port (0 picks one)")
        self.port, self.setting = port, setting


@contextmanager
def explained(port: int, setting: str) -> Iterator[None]:
    """Turn the failure to bind `port` because it is taken into PortInUseError."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUseError(port, setting) from None


def require_free(host: str, port: int, setting: str) -> None:
    """PortInUseError unless a server could listen on `port` now: checked before a command
    starts anything else, so it fails at once instead of after connecting to Kafka and
    Postgres (the server's own bind says the same if the port is taken meanwhile)."""
    if port and in_use(host, port):
        raise PortInUseError(port, setting)


def in_use(host: str, port: int) -> bool:
    """Whether something listens on `port` (of `host`, the address a server would bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as servers bind: a port whose last connections linger in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a child process to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
