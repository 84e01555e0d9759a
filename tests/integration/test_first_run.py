"""A fresh machine's first run: commands started at once share the Kafka cache safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stockflow.devtools.localenv import KAFKA_VERSION

_RESOLVE = "from stockflow.devtools.localenv import kafka_jars; print(kafka_jars())"
# holds the cache's lock and leaves a half-written folder, as a resolver killed mid-way
_STALE = f"""
import fcntl, pathlib, sys, time
home = pathlib.Path(sys.argv[1]) / "kafka-{KAFKA_VERSION}"
home.mkdir(parents=True)
lock = (home / ".lib.lock").open("a+")
fcntl.flock(lock, fcntl.LOCK_EX)
(home / "lib.partial-killed").mkdir()
(home / "lib.partial-killed" / "half.jar").write_bytes(b"PK")
print("held", flush=True)
time.sleep(600)
"""


def test_two_first_resolutions_at_once_both_succeed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "STOCKFLOW_CACHE_DIR": str(cache)}
    stale = subprocess.Popen([sys.executable, "-c", _STALE, str(cache)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert stale.stdout is not None and stale.stdout.readline() == "held\n"
    stale.send_signal(signal.SIGKILL)
    stale.wait()
    resolvers = [subprocess.Popen([sys.executable, "-c", _RESOLVE], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    results = [(r.communicate(timeout=600), r.returncode) for r in resolvers]
    lib = cache / f"kafka-{KAFKA_VERSION}" / "lib"
    for (out, err), code in results:
        assert code == 0, err[-3000:]
        assert out.strip() == str(lib)
    assert (lib / ".complete").exists()
    jars = {p.name for p in lib.glob("*.jar")}
    assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars and len(jars) > 30, jars
    assert not list(lib.parent.glob("lib.partial*"))  # the killed one's folder too
    assert sum("from Maven Central" in err for (_, err), _ in results) == 1  # Maven ran once
