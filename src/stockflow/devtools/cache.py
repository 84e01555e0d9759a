"""Folders in stockflow's cache (`~/.cache/stockflow`, or `STOCKFLOW_CACHE_DIR`), each
filled once however many commands want it at the same moment.

Several stockflow commands may start at once on a fresh machine (`scripts/run` beside
`scripts/test`). One fills the folder, under an exclusive lock beside it, into a folder of
its own that it renames into place only when complete; the others wait for the lock and
take its result. The lock is the kernel's (`flock`), released when its holder dies, so a
killed filler blocks nobody, and the next one clears what it left half-written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stockflow import StockflowError

__all__ = ["cache_dir", "filled_once"]

_COMPLETE = ".complete"
_PATIENCE = 900.0  # seconds to wait for another filler: a first download on a slow network


def cache_dir() -> Path:
    """stockflow's cache folder, made if missing."""
    root = os.environ.get("STOCKFLOW_CACHE_DIR")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(root) if root else cache / "stockflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def filled_once(folder: Path, fill: Callable[[Path], None], what: str,
                say: Callable[[str], None]) -> Path:
    """`folder`, filled by `fill(a_new_empty_folder)` unless that was done before; `what`
    the filling is (for `say`, when this command waits for another's)."""
    if (folder / _COMPLETE).exists():  # a folder is renamed into place only once complete
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.with_name(f".{folder.name}.lock"), what, say):
        if not (folder / _COMPLETE).exists():  # else another command filled it meanwhile
            for left in folder.parent.glob(f"{folder.name}.partial*"):  # by killed fillers
                shutil.rmtree(left, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.partial-", dir=folder.parent))
            try:
                fill(tmp)
                (tmp / _COMPLETE).touch()
                shutil.rmtree(folder, ignore_errors=True)  # incomplete, from an older stockflow
                tmp.rename(folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # gone already once renamed
    return folder


@contextlib.contextmanager
def _exclusive(path: Path, what: str, say: Callable[[str], None]) -> Iterator[None]:
    """An exclusive lock on `path`, which names its holder's pid meanwhile."""
    with path.open("a+") as held:
        deadline, said = time.monotonic() + _PATIENCE, False
        while True:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                held.seek(0)
                holder = held.read().strip() or "?"
                if time.monotonic() > deadline:
                    raise StockflowError(f"process {holder} has been {what} for over "
                                         f"{_PATIENCE:.0f} s (lock {path})") from None
                if not said:
                    say(f"waiting for process {holder}, {what}")
                    said = True
                time.sleep(0.2)
        held.truncate(0)
        held.write(str(os.getpid()))
        held.flush()
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
