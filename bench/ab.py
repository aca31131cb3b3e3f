#!/usr/bin/env python3
"""Interleaved A/B of the daemon's connect cost: several daemons up at once, short bursts in turn.

    python bench/ab.py --bursts 12 \\
        base=".venv/bin/python bench/side_loads.py daemon-at 1396fe8" \\
        lean=".venv/bin/python bench/side_loads.py daemon-at HEAD" \\
        node=peer          # the command "peer": the Node peer of bench/peers/node

On a shared machine, runs minutes apart see different neighbours. Here one
redis-server (seeded by PHP, as ``bench/run.py`` does) and every variant's
daemon (all on core 1, the generator on core 0, as in ``bench/run.py``) stay
up, and the generator sends ``--seconds`` bursts of authorized connects to
each daemon in turn (order alternating), so neighbouring bursts of two
variants share the machine's state. Per burst: the daemon's CPU per connect
(user + system from /proc), connects/s, p99, and the CPU the rest of the
machine used (noise). Reported: per variant the median and the least CPU per
connect (other processes only ever add to it), and for each variant against
the first the median of the per-round ratios.

Uses bench/lib (Stack: redis, seeding, generator; Server) as `bench/run.py` does.
Raw figures: ``bench/out/ab-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.paths import OUT  # noqa: E402
from bench.lib.procstat import CpuWindow  # noqa: E402
from bench.lib.servers import Server  # noqa: E402
from bench.lib.stack import Stack  # noqa: E402
from bench.lib.stats import pct  # noqa: E402
from bench.scenarios.connect import CONCURRENCY  # noqa: E402

SESSIONS = 2000


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def burst(server: Server, stack: Stack, seconds: float, transport: str) -> dict:
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("connect_loop", url=server.url, transport=transport,
                      concurrency=CONCURRENCY, duration=seconds, mode="auth",
                      sessions=SESSIONS)
    cpu = window.stop()
    done = max(result["done"], 1)
    return {"ms_per_connect": round(1000 * cpu["server_cpu_s"] / done, 4),
            "rate": round(result["rate"], 1), "errors": result["errors"],
            "p99_ms": round(pct(result["latencies"], 99) or 0, 2),
            "server_cpu_pct": cpu["server_cpu_pct"], "noise_cpu_pct": cpu["noise_cpu_pct"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="+", help="name=daemon command")
    p.add_argument("--bursts", type=int, default=10, help="bursts per variant")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per burst")
    p.add_argument("--transport", default="websocket", choices=("websocket", "polling"))
    args = p.parse_args()
    variants = [v.split("=", 1) for v in args.variants]
    OUT.mkdir(exist_ok=True)
    stack = None

    def on_term(signum, frame):
        raise KeyboardInterrupt  # so that finally: stops every child

    signal.signal(signal.SIGTERM, on_term)
    runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
    try:
        stack = Stack(SESSIONS)
        servers = {}
        for name, command in variants:
            kind = "peer" if command == "peer" else "daemon"
            servers[name] = stack.server(kind, "" if kind == "peer" else command)
            stack.gen.call("connect_loop", url=servers[name].url, transport=args.transport,
                     concurrency=CONCURRENCY, duration=1.0, mode="auth",
                     sessions=SESSIONS)  # warm-up
        for rnd in range(args.bursts):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for name, _ in order:
                fig = burst(servers[name], stack, args.seconds, args.transport)
                fig["load"] = load_average()
                runs[name].append(fig)
                print(f"burst {rnd + 1:2} {name:>10} " + " ".join(
                    f"{k}={v}" for k, v in fig.items()), flush=True)
    finally:
        if stack is not None:
            stack.stop()
    first = variants[0][0]
    summary = {}
    for name, figs in runs.items():
        ratios = [b["ms_per_connect"] / a["ms_per_connect"]
                  for a, b in zip(runs[first], figs, strict=True)]
        summary[name] = {
            "median_ms_per_connect": statistics.median(f["ms_per_connect"] for f in figs),
            "least_ms_per_connect": min(f["ms_per_connect"] for f in figs),
            "median_rate": statistics.median(f["rate"] for f in figs),
            "median_p99_ms": statistics.median(f["p99_ms"] for f in figs),
            "median_noise_cpu_pct": statistics.median(f["noise_cpu_pct"] for f in figs),
            f"median_cpu_ratio_to_{first}": round(statistics.median(ratios), 4),
            "errors": sum(sum(f["errors"].values()) for f in figs)}
        print(f"{name:>10}: " + " ".join(f"{k}={v:g}" for k, v in summary[name].items()))
    path = OUT / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"variants": dict(variants), "transport": args.transport,
                                "seconds": args.seconds, "bursts": runs, "summary": summary,
                                "cores": os.cpu_count()}, indent=1))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
