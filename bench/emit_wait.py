#!/usr/bin/env python3
"""What waiting for a replica costs an emit (issue 14: durability across a failover).

    .venv/bin/python bench/emit_wait.py [--runs 3] [--emits 2000]

One Sentinel group of tests/topology.py (master, two replicas, three
sentinels) on loopback; bench/emit_wait.php emits through the Emitter on a
Predis Sentinel client with ``replicas: 0`` (no WAIT) and ``replicas: 1``
(WAIT 1 after every append), alternating, ``--runs`` times each. Prints one
JSON line per run, then the medians: wall milliseconds per emit (median and
p99 of each run) and the PHP process's CPU milliseconds per emit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import topology  # noqa: E402


def run(group: topology.Sentinel, replicas: int, emits: int) -> dict:
    done = subprocess.run(["php", str(ROOT / "bench" / "emit_wait.php"), group.tcp,
                           topology.SERVICE, str(replicas), str(emits)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--emits", type=int, default=2000)
    args = parser.parse_args()
    rows: dict[int, list[dict]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory() as tmp:
        group = topology.Sentinel(Path(tmp), replicas=2)
        try:
            for _ in range(args.runs):
                for replicas in (0, 1):
                    rows[replicas].append(run(group, replicas, args.emits))
                    print(json.dumps(rows[replicas][-1]), flush=True)
        finally:
            group.stop()
    for replicas, runs in rows.items():
        summary = {key: statistics.median(r[key] for r in runs)
                   for key in ("median_ms", "p99_ms", "php_cpu_ms_per_emit")}
        print(json.dumps({"replicas": replicas, "medians_of_runs": summary}))


if __name__ == "__main__":
    main()
