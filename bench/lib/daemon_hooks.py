"""The daemon with measuring hooks, chosen by environment variables (run as a
program by ``side_loads.py daemon-exp``; imports nothing of the work tree):

- ``BENCH_TRACE_DIR=dir``: tracemalloc on; SIGUSR2 writes a snapshot (and the
  greenlet count, RSS) to dir (``BENCH_TRACE_FRAMES`` frames, default 30);
- ``BENCH_GC_DEFAULTS=1``: gc.set_threshold becomes a no-op, so the daemon
  keeps Python's default thresholds (to measure what its own setting buys);
- ``BENCH_GC_THRESHOLDS=a,b,c``: gc.set_threshold(a, b, c) before the daemon
  starts (a daemon that sets its own thresholds overrides this);
- ``BENCH_GC_LOG=path``: every collection of 20 ms or more appended to path as
  a JSON line (time, generation, seconds, objects collected).
"""

import gc
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd(), HERE)]


def gc_settings() -> None:
    if os.environ.get("BENCH_GC_THRESHOLDS"):
        gc.set_threshold(*map(int, os.environ["BENCH_GC_THRESHOLDS"].split(",")))
    if os.environ.get("BENCH_GC_DEFAULTS") == "1":
        gc.set_threshold = lambda *args: None


def log_long_collections(path: str) -> None:
    started = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took >= 0.02:
            with open(path, "a") as f:
                f.write(json.dumps({"t": time.time(), "generation": info["generation"],
                                    "seconds": round(took, 3),
                                    "collected": info["collected"]}) + "\n")

    gc.callbacks.append(on_gc)


def dump_snapshot(directory: str) -> None:
    """A tracemalloc snapshot, with greenlets, RSS and traced bytes beside it."""
    import tracemalloc

    import greenlet

    gc.collect()
    snap = tracemalloc.take_snapshot()
    base = os.path.join(directory, f"snap-{int(time.time() * 1000)}")
    snap.dump(base + ".tmp")
    with open("/proc/self/status") as f:
        rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")][0]
    info = {"greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
            "rss_kib": rss, "traced_bytes": tracemalloc.get_traced_memory()[0]}
    with open(base + ".json", "w") as f:
        json.dump(info, f)
    os.rename(base + ".tmp", base + ".snap")


def trace_on_signal(directory: str) -> None:
    import tracemalloc

    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "30")))
    signal.signal(signal.SIGUSR2, lambda signum, frame: dump_snapshot(directory))


if __name__ == "__main__":
    gc_settings()
    if os.environ.get("BENCH_GC_LOG"):
        log_long_collections(os.environ["BENCH_GC_LOG"])
    if os.environ.get("BENCH_TRACE_DIR"):
        trace_on_signal(os.environ["BENCH_TRACE_DIR"])
    from bridge.cli import main

    sys.exit(main())
