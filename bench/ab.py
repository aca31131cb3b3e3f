#!/usr/bin/env python3
"""Interleaved A/B of connect scenarios: each variant's daemon in turn, several rounds.

    python bench/ab.py --rounds 4 --only connect-ws \\
        base=".venv/bin/python bench/side_loads.py daemon-at 1396fe8" \\
        lean=".venv/bin/python bench/side_loads.py daemon-at HEAD"

Each round runs ``bench/run.py --servers daemon --runs 1 --no-profile`` once per
variant (order alternating between rounds, so a machine getting busier or
quieter does not favour one), and reads the run's figures from
``bench/out/results.json``. The figures that matter on a shared machine are
the daemon's CPU per connect (from /proc) and the noise CPU beside it; rates
are shown too. Per-run lines and the medians go to stdout and, as JSON, to
``bench/out/ab-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FIELDS = ("server_ms_per_connect", "rate", "p50_ms", "p99_ms", "server_cpu_pct",
          "noise_cpu_pct")


def one_run(command: str, scenarios: list[str], duration: float) -> dict:
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--servers", "daemon",
            "--runs", "1", "--no-profile", "--duration", str(duration),
            "--daemon-cmd", command]
    for name in scenarios:
        argv += ["--only", name]
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    results = json.loads((OUT / "results.json").read_text())
    daemon = results["runs"][0]["daemon"]
    return {name: {k: daemon[name].get(k) for k in FIELDS} for name in scenarios}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="+", help="name=daemon command")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", action="append", default=[], help="scenario (repeatable)")
    p.add_argument("--duration", type=float, default=8.0)
    args = p.parse_args()
    scenarios = args.only or ["connect-ws"]
    variants = [v.split("=", 1) for v in args.variants]
    runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
    loads = []
    for rnd in range(args.rounds):
        order = variants if rnd % 2 == 0 else list(reversed(variants))
        for name, command in order:
            loads.append(load_average())
            result = one_run(command, scenarios, args.duration)
            runs[name].append(result)
            for scenario, fig in result.items():
                print(f"round {rnd + 1} {name:>10} {scenario:<16} "
                      + " ".join(f"{k}={fig[k]}" for k in FIELDS)
                      + f" load={loads[-1]}", flush=True)
    medians = {name: {scenario: {k: statistics.median(r[scenario][k] for r in rs
                                                      if r[scenario][k] is not None)
                                 for k in FIELDS} for scenario in scenarios}
               for name, rs in runs.items()}
    # Other processes only ever add CPU time (cache and scheduler interference):
    # the least CPU per connect of a variant is the figure least touched by them.
    least = {name: {scenario: min(r[scenario]["server_ms_per_connect"] for r in rs)
                    for scenario in scenarios} for name, rs in runs.items()}
    print("medians (and the least CPU per connect):")
    for name, by_scenario in medians.items():
        for scenario, fig in by_scenario.items():
            print(f"  {name:>10} {scenario:<16} "
                  + " ".join(f"{k}={fig[k]:g}" for k in FIELDS)
                  + f" least_ms_per_connect={least[name][scenario]:g}")
    OUT.mkdir(exist_ok=True)
    path = OUT / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"variants": dict(variants), "runs": runs, "medians": medians,
                                "least_ms_per_connect": least,
                                "load_averages": loads, "cores": os.cpu_count()}, indent=1))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
