"""The C connect generator (bench/cgen/connects.c): built with gcc on first use.

It does one authorized Socket.IO connect the way socket.io-client does
(websocket, or polling then upgrade, each polling request on a connection of
its own) for a fraction of the Node generator's CPU, so that on a 2-core
machine the server under test is not left 1.2 cores (bench/RESULTS.md 20.2).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench.lib.paths import BENCH, OUT
from bench.lib.placement import LOAD_CORE, placed

SOURCE = BENCH / "cgen" / "connects.c"
BINARY = OUT / "connects"


def build() -> Path:
    """The compiled generator, rebuilt when the source is newer."""
    if not BINARY.exists() or BINARY.stat().st_mtime < SOURCE.stat().st_mtime:
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(BINARY), str(SOURCE)], check=True)
    return BINARY


def cookie_file(sessions: int, first: int = 0) -> Path:
    """Session ids of the seeded set (seed_sessions.php: md5 of "session-bridge-bench:i")."""
    path = OUT / f"session-ids-{first}-{sessions}.txt"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(
            hashlib.md5(f"session-bridge-bench:{i}".encode()).hexdigest() + "\n"
            for i in range(first, first + sessions)))
    return path


def connect_loop(url: str, transport: str, concurrency: int, duration: float,
                 sessions: int, core: int | None = LOAD_CORE) -> dict:
    """What loadgen.js's ``connect_loop`` answers (done, rate, errors, latencies,
    upgraded), plus ``gen_cpu_s``: the generator's own user+system CPU."""
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    argv = [str(build()), "-h", host, "-p", port, "-t", transport, "-c", str(concurrency),
            "-d", str(duration), "-k", str(cookie_file(sessions))]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(placed(argv, core), stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()  # the one JSON line, at the end
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here: its rusage is the figure
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"connects exited {proc.returncode}: "
                               f"{err.read().decode(errors='replace')[-2000:]}")
    result = json.loads(out)
    result["refusals"] = {}
    result["gen_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result
