"""Memory per idle socket by where it was allocated: the daemon under tracemalloc
(``side_loads.py daemon-exp``), snapshots before and after holding ``n`` idle
sockets, the difference per socket by the library frame nearest each allocation."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import time
from pathlib import Path

from bench.lib.paths import BENCH, OUT, PY
from bench.lib.procstat import cpu_seconds, wait_idle
from bench.lib.stack import Stack
from bench.scenarios.connect import warm_up
from devtools.children import wait_until

LIBRARIES = ("site-packages/eventlet/", "site-packages/engineio/", "site-packages/socketio/",
             "site-packages/redis/", "site-packages/greenlet/", "/bridge/", "/email/",
             "/http/", "/tracemalloc.py")
TRACE = OUT / "side_loads" / "trace"
SNAPSHOT_DEADLINE = 120.0
TRACED_START_DEADLINE = 300.0  # two minutes were seen on a loaded 2-core machine


def snapshots(n: int, rev: str, frames: int) -> tuple:
    """(before, after, info before, info after, sockets held) of a daemon of ``rev``."""
    TRACE.mkdir(parents=True, exist_ok=True)
    for old in TRACE.glob("snap-*"):
        old.unlink()
    os.environ["BENCH_TRACE_DIR"] = str(TRACE)
    os.environ["BENCH_TRACE_FRAMES"] = str(frames)
    stack = Stack(2 * n)
    try:
        server = stack.server("daemon", f"{PY} {BENCH / 'side_loads.py'} daemon-exp {rev}",
                              ready_deadline=TRACED_START_DEADLINE)
        try:
            warm_up(stack, server, 2 * n, concurrency=10, first=n)
            time.sleep(2.0)
            before, info0 = traced_snapshot(server.pid)
            held = stack.gen.call("hold", url=server.url, first=0, n=n, concurrency=50)
            wait_idle(server.pid, cpu_seconds(server.pid), time.monotonic(), 0)
            time.sleep(2.0)
            after, info1 = traced_snapshot(server.pid)
        finally:
            stack.gen.call("release", keep=0)
            server.stop()
        stack.quit()
    finally:
        stack.stop()
    return before, after, info0, info1, held["held"]


def traced_snapshot(pid: int):
    """Ask the daemon for a snapshot (SIGUSR2) and load it with its info."""
    import tracemalloc

    seen = set(TRACE.glob("snap-*.snap"))
    os.kill(pid, signal.SIGUSR2)
    wait_until(lambda: set(TRACE.glob("snap-*.snap")) - seen, SNAPSHOT_DEADLINE, 0.05,
               "a snapshot")
    path = sorted(set(TRACE.glob("snap-*.snap")) - seen)[0]
    info = json.loads(path.with_suffix(".json").read_text())
    return tracemalloc.Snapshot.load(str(path)), info


def short_frame(frame) -> str:
    path = re.sub(r"^.*?(site-packages/|lib/python3\.\d+/|/bridge/)", r"\1", frame.filename)
    return f"{path}:{frame.lineno}"


def by_site(before, after) -> tuple[dict, dict]:
    """Bytes grown per (library frame, allocating line) and per library."""
    sites: dict[tuple[str, str], int] = {}
    libraries: dict[str, int] = {}
    for stat in after.compare_to(before, "traceback"):
        frames = list(stat.traceback)  # oldest first
        recent = frames[-1]
        lib = next((f for f in reversed(frames) if any(x in f.filename for x in LIBRARIES)),
                   recent)
        key = (short_frame(lib), short_frame(recent))
        sites[key] = sites.get(key, 0) + stat.size_diff
        name = next((x.strip("/").split("/")[-1] for x in LIBRARIES if x in lib.filename),
                    "other")
        libraries[name] = libraries.get(name, 0) + stat.size_diff
    return sites, libraries


def report(args: argparse.Namespace, argv: list[str], measured: tuple) -> str:
    before, after, info0, info1, count = measured
    sites, libraries = by_site(before, after)
    traced = sum(sites.values())
    lines = [f"### tracemalloc, {count} idle sockets (commit {args.rev}, {args.frames} frames)",
             "", f"`python bench/side_loads.py memory {' '.join(argv)}`", "",
             f"- RSS under tracing: {info0['rss_kib'] / 1024:.1f} -> "
             f"{info1['rss_kib'] / 1024:.1f} MiB "
             f"({(info1['rss_kib'] - info0['rss_kib']) / count:.1f} KiB/socket, tracing "
             f"overhead included)",
             f"- traced Python allocations: {traced / 1024 / count:.1f} KiB/socket",
             f"- greenlets: {info0['greenlets']} -> {info1['greenlets']} "
             f"({(info1['greenlets'] - info0['greenlets']) / count:.2f} per socket)", "",
             "| KiB/socket | library frame nearest the allocation | allocating line |",
             "|---|---|---|"]
    for (lib, recent), size in sorted(sites.items(), key=lambda kv: -kv[1])[:args.top]:
        lines.append(f"| {size / 1024 / count:.2f} | `{lib}` | `{recent}` |")
    lines += ["", "| KiB/socket | library |", "|---|---|"]
    for name, size in sorted(libraries.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {size / 1024 / count:.2f} | {name} |")
    return "\n".join(lines)


def write(text: str, path: Path = OUT / "side_loads" / "memory.md") -> None:
    path.write_text(text + "\n")
