"""``--workers``: connects/s and CPU per connect with 1 and 2 worker processes, interleaved.

Standalone (it does not use bench/run.py): a private redis-server, sessions
written by PHP (seed_sessions.php), a load generator, and the daemon through
its CLI, started afresh for each round with ``--workers 1`` or
``--workers N``, rounds interleaved (1, N, 1, N, ...). The generator is
``--generator c`` (the default: bench/cgen/connects.c, the same exchanges as
socket.io-client for a fifth of a core at 2,000 connects/s, so the daemon can
have most of the machine) or ``--generator node`` (loadgen.js,
socket.io-client: 0.8 of a core at 1,300/s, which caps what two workers can
show on two cores). Each round measures, for the websocket transport and then
polling-then-upgrade:

- connects/s the load generator completed (authorized connects, each closed
  at ``connect``, ``--concurrency`` at once for ``--seconds``), and the
  generator's own CPU;
- CPU per connect of the daemon: user+system time of the parent and every
  worker from /proc, divided by the connects;
- the daemon's CPU while idle (no client; Redis loops and timers only), per
  second, before the load;
- the CPU seconds of the parent and of each worker (how the work spread),
  and how many connections were passed to the worker holding their
  Engine.IO session.

Nothing is pinned to a core, except with ``--pin``: the rounds of N workers
then run the daemon with ``--pin-workers`` and one C generator pinned to each
core (the concurrency split between them), so that connections arrive on
every core as a NIC spreading flows over its queues would deliver them (the
one-worker rounds stay as they are: one generator, nothing pinned). Also
measures the shared limits table alone (``--quota-only``): microseconds per
operation.

usage: .venv/bin/python bench/workers.py [--workers 2] [--rounds 3] [--seconds 10]
                                         [--generator c|node] [--pin]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.lib import cgen, loadgen, procstat, stack  # noqa: E402
from devtools.children import Children  # noqa: E402
from tests import harness  # noqa: E402  (free ports, redis-server, waits)


def node_loop(node: loadgen.Generator, url: str, transport: str, concurrency: int, seconds: float,
              sessions: int) -> dict:
    before = procstat.cpu_seconds_of([node.pid])
    got = node.call("connect_loop", url=url, transport=transport, concurrency=concurrency,
                    duration=seconds, sessions=sessions, mode="auth")
    return {**got, "gen_cpu_s": procstat.cpu_seconds_of([node.pid]) - before}


def c_loop(url: str, transport: str, concurrency: int, seconds: float, sessions: int) -> dict:
    return cgen.connect_loop(url, transport, concurrency, seconds, sessions, core=None)


def c_loop_per_core(url: str, transport: str, concurrency: int, seconds: float,
                    sessions: int) -> dict:
    """One C generator pinned to each core, ``concurrency`` split between them: clients
    whose packets arrive on every core, as a NIC spreading flows over its queues would."""
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, concurrency // len(cores))
    with concurrent.futures.ThreadPoolExecutor(len(cores)) as pool:
        parts = list(pool.map(lambda core: cgen.connect_loop(
            url, transport, share, seconds, sessions, core=core), cores))
    merged = {"done": 0, "rate": 0.0, "gen_cpu_s": 0.0, "latencies": [], "errors": {}}
    for part in parts:
        for key in ("done", "rate", "gen_cpu_s"):
            merged[key] += part[key]
        merged["latencies"] += part["latencies"]
        for reason, count in part["errors"].items():
            merged["errors"][reason] = merged["errors"].get(reason, 0) + count
    return merged


def admin_json(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as reply:
        return reply.read().decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def one_round(tmp: Path, redis, workers: int, args, gen) -> dict:
    """One daemon with ``workers``; ``gen(url, transport, concurrency, seconds, sessions)``
    runs a connect loop and answers loadgen.js's figures plus ``gen_cpu_s``."""
    pinned = args.pin and workers > 1
    if pinned:
        gen = c_loop_per_core
    daemon = harness.Daemon(tmp, redis, "--workers", str(workers), "--handshake-rate", "0",
                            "--log-level", "warning", "--rooms-key", "rooms",
                            *(["--pin-workers"] if pinned else []))
    try:
        ready = json.loads(admin_json(daemon.admin_port, "/readyz"))
        pids = [daemon.popen.pid] + [w["pid"] for w in ready.get("workers", [])]
        result = {"workers": workers}
        before = procstat.cpu_seconds_of(pids)
        time.sleep(args.idle)
        result["idle_cores_busy"] = round((procstat.cpu_seconds_of(pids) - before) / args.idle, 3)
        for transport in ("websocket", "polling"):
            gen(daemon.url, transport, 10, 1, args.sessions)  # warm-up
            before, wall = [procstat.cpu_seconds_of([p]) for p in pids], time.monotonic()
            got = gen(daemon.url, transport, args.concurrency, args.seconds, args.sessions)
            each = [procstat.cpu_seconds_of([p]) - b for p, b in zip(pids, before, strict=True)]
            cpu = sum(each)
            wall = time.monotonic() - wall
            lat = sorted(got["latencies"])
            result[transport] = {
                "connects": got["done"], "rate": round(got["rate"], 1),
                "cpu_ms_per_connect": round(1000 * cpu / max(1, got["done"]), 3),
                "daemon_cores_busy": round(cpu / wall, 2),
                "generator_cores_busy": round(got["gen_cpu_s"] / wall, 2),
                "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
                "p99_ms": round(lat[int(len(lat) * 0.99)], 1) if lat else None,
                "cpu_s_parent_then_workers": [round(x, 2) for x in each],
                "errors": got["errors"]}
        text = admin_json(daemon.admin_port, "/metrics")
        result["passed"] = metric(text, "bridge_connections_passed_total")
        return result
    finally:
        daemon.stop(15)


def quota_cost(workers: int = 2, count: int = 20000) -> dict:
    from bridge.quota import Quota

    shared = Quota.create(workers)
    mine = Quota(shared.fd, workers, 0)
    limiter = mine.limiter("handshake", 50)
    users = [str(100000 + i) for i in range(count)]
    timings = {}
    for name, call in (("add_socket", mine.add_socket), ("sockets_of", mine.sockets_of),
                       ("allow", limiter.allow), ("remove_socket", mine.remove_socket)):
        start = time.perf_counter()
        for user in users:
            call(user)
        timings[name] = round(1e6 * (time.perf_counter() - start) / count, 2)
    return {"us_per_operation": timings,
            "per_connect_us": round(2 * timings["allow"] + timings["sockets_of"]
                                    + timings["add_socket"] + timings["remove_socket"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=5, help="seconds of idle CPU measured")
    parser.add_argument("--quota-only", action="store_true")
    parser.add_argument("--generator", choices=("c", "node"), default="c")
    parser.add_argument("--pin", action="store_true",
                        help="rounds of N workers: --pin-workers, one C generator per core")
    args = parser.parse_args()
    report = {"quota": quota_cost(args.workers), "args": vars(args),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       capture_output=True, text=True).stdout.strip(),
              "cores": os.cpu_count(), "load_before": os.getloadavg()}
    if args.quota_only:
        print(json.dumps(report, indent=1))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    redis = harness.Redis(tmp)
    children = Children(tmp)
    node = loadgen.Generator(children, core=None) if args.generator == "node" else None
    gen = functools.partial(node_loop, node) if node else c_loop
    try:
        stack.seed(redis.port, args.sessions)
        rounds = []
        for _ in range(args.rounds):
            for workers in (1, args.workers):
                rounds.append(one_round(tmp, redis, workers, args, gen))
                print(json.dumps(rounds[-1]), flush=True)
        report["rounds"] = rounds
        report["load_after"] = os.getloadavg()
        report["summary"] = summary(rounds, args.workers)
    finally:
        children.stop_all()
        redis.stop()
    out = BENCH / "results" / "workers.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    return 0


def summary(rounds: list[dict], n: int) -> dict:
    result = {}
    for workers in (1, n):
        result[f"idle_cores_busy.{workers}"] = statistics.median(
            r["idle_cores_busy"] for r in rounds if r["workers"] == workers)
    for transport in ("websocket", "polling"):
        for key in ("rate", "cpu_ms_per_connect", "daemon_cores_busy", "generator_cores_busy",
                    "p99_ms"):
            one = statistics.median(r[transport][key] for r in rounds if r["workers"] == 1)
            many = statistics.median(r[transport][key] for r in rounds if r["workers"] == n)
            result[f"{transport}.{key}"] = {"1": one, str(n): many,
                                            "ratio": round(many / one, 2) if one else None}
    return result


if __name__ == "__main__":
    sys.exit(main())
