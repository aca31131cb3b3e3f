#!/usr/bin/env python3
"""Connects/s with sessions on a 3-primary Redis Cluster against one Redis (issue 14).

    .venv/bin/python bench/cluster_connects.py [--runs 3] [--duration 8] [--sessions 2000]

For each topology in turn (single, cluster, single, cluster...): the Redis
topology of tests/topology.py on loopback ports, sessions written by PHP
through Predis (seed_sessions.php; the cluster client for the cluster), the
daemon through its CLI on a ``redis://`` or ``redis+cluster://`` URL, and
bench/loadgen.js's ``connect_loop`` (authenticated WebSocket connects, 50 at
a time). The daemon runs on core 1 and the generator on core 0 when taskset
exists; Redis is not pinned. Prints one JSON line per run and a summary:
medians of connects/s and of the daemon's CPU milliseconds per connect
(the latter holds up better on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.loadgen import Generator  # noqa: E402
from bench.lib.paths import BENCH  # noqa: E402
from bench.lib.placement import HAVE_TASKSET, SERVER_CORE  # noqa: E402
from bench.lib.procstat import cpu_seconds  # noqa: E402
from bench.lib.stats import rounded_pct  # noqa: E402
from devtools.children import Children  # noqa: E402
from tests import harness, topology  # noqa: E402


def seed(target: str, port: int, count: int) -> None:
    done = subprocess.run(["php", str(BENCH / "seed_sessions.php"), target, str(port),
                           str(count)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)


def start(kind: str, tmp: Path, sessions: int):
    if kind == "single":
        redis = harness.Redis(tmp)
        seed("127.0.0.1", redis.port, sessions)
        return redis
    cluster = topology.Cluster(tmp)
    seed("cluster:" + ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes), 0, sessions)
    return cluster


def daemon(redis, tmp: Path) -> harness.Daemon:
    proc = harness.Daemon(tmp, redis, "--handshake-rate", "0", "--max-sockets-per-user",
                          "1000000", "--log-level", "warning")
    if HAVE_TASKSET:
        subprocess.run(["taskset", "-pc", str(SERVER_CORE), str(proc.pid)], capture_output=True)
    return proc


def connect_rate(tmp: Path, url: str, duration: float, sessions: int) -> dict:
    children = Children(tmp)
    try:
        return Generator(children).call("connect_loop", url=url, transport="websocket",
                                        concurrency=50, duration=duration, mode="auth",
                                        sessions=sessions)
    finally:
        children.stop_all()


def one_run(kind: str, args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    redis = start(kind, tmp, args.sessions)
    try:
        proc = daemon(redis, tmp)
        try:
            cpu_before = cpu_seconds(proc.pid)
            result = connect_rate(tmp, proc.url, args.duration, args.sessions)
            daemon_cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.stop()
    finally:
        redis.stop()
    latencies = result["latencies"]
    return {"kind": kind, "rate": round(result["rate"], 1), "done": result["done"],
            "daemon_cpu_ms_per_connect": round(1000 * daemon_cpu / max(result["done"], 1), 3),
            "errors": result["errors"], "refusals": result["refusals"],
            "p50_ms": rounded_pct(latencies, 50), "p99_ms": rounded_pct(latencies, 99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="single/cluster pairs (default 3)")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds of connects per topology and run (default 8)")
    parser.add_argument("--sessions", type=int, default=2000,
                        help="sessions seeded and cycled through (default 2000)")
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        for kind in ("single", "cluster"):
            results.append(one_run(kind, args))
            print(json.dumps(results[-1]), flush=True)
    summary = {"cpus": os.cpu_count()}
    for figure in ("rate", "daemon_cpu_ms_per_connect"):
        medians = {kind: statistics.median(r[figure] for r in results if r["kind"] == kind)
                   for kind in ("single", "cluster")}
        summary[figure] = {**medians, "cluster_vs_single": round(
            medians["cluster"] / medians["single"], 3)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
