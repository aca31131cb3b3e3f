"""Where the CPU of a second worker goes: one daemon and its load placed on cores.

Each set-up runs one daemon (``--workers 1`` or ``2``) against the C generator
(websocket connects, ``--concurrency`` at once, ``--seconds`` long) with the
processes pinned by ``taskset``:

- ``one-own-core``: the daemon alone on core 1; Redis and the generator on core 0;
- ``one-shared-core``: the daemon, Redis and the generator all on core 0 (the
  rate the whole stack reaches on one core);
- ``one-shared-spin``: as above plus a Python process spinning on core 0;
- ``two-free``: two workers, nothing pinned (as ``bench/workers.py``);
- ``two-pinned``: worker i on core i, Redis and the generator free;
- ``two-shared-core``: two workers, Redis and the generator all on core 0.

Per set-up: connects/s, the daemon's CPU per connect, its cores busy, the
generator's, the daemon's voluntary and involuntary context switches per
connect and the machine's steal time. Set-ups are interleaved round by round.

usage: .venv/bin/python bench/worker_placement.py [--rounds 3] [--seconds 6]
                                                  [--setups one-own-core,two-free,...]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.lib import cgen, stack  # noqa: E402
from bench.lib.placement import LOAD_CORE, SERVER_CORE  # noqa: E402
from bench.lib.procstat import cpu_seconds_of  # noqa: E402
from bench.workers import admin_json  # noqa: E402
from tests import harness  # noqa: E402

SETUPS = ("one-own-core", "one-shared-core", "one-shared-spin", "two-free", "two-pinned",
          "two-shared-core")


def pin(pid: int, cores: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], check=True,
                   capture_output=True)


def switches(pids: list[int]) -> tuple[int, int]:
    """Voluntary and involuntary context switches of ``pids`` so far."""
    voluntary = involuntary = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        voluntary += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)[1])
        involuntary += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M)[1])
    return voluntary, involuntary


def steal_and_total() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], sum(fields)


def place(setup: str, daemon: int, workers: list[int], redis: int) -> tuple[int | None, list]:
    """Pins the processes of ``setup``; answers the generator's core and extra processes."""
    both = f"{LOAD_CORE},{SERVER_CORE}"
    for pid in (daemon, *workers, redis):
        pin(pid, both)
    if setup == "one-own-core":
        pin(daemon, str(SERVER_CORE))
        pin(redis, str(LOAD_CORE))
        return LOAD_CORE, []
    if setup in ("one-shared-core", "one-shared-spin", "two-shared-core"):
        for pid in (daemon, *workers, redis):
            pin(pid, str(LOAD_CORE))
        spin = ["taskset", "-c", str(LOAD_CORE), sys.executable, "-c", "while True: pass"]
        return LOAD_CORE, [subprocess.Popen(spin)] if setup == "one-shared-spin" else []
    if setup == "two-pinned":
        pin(workers[0], str(LOAD_CORE))
        pin(workers[1], str(SERVER_CORE))
    return None, []


def one_run(setup: str, tmp: Path, redis, args) -> dict:
    daemon = harness.Daemon(tmp, redis, "--workers", "2" if setup.startswith("two") else "1",
                            "--handshake-rate", "0", "--log-level", "warning")
    extra = []
    try:
        ready = json.loads(admin_json(daemon.admin_port, "/readyz"))
        workers = [w["pid"] for w in ready.get("workers", [])]
        pids = [daemon.popen.pid, *workers]
        core, extra = place(setup, daemon.popen.pid, workers, redis.popen.pid)
        cgen.connect_loop(daemon.url, "websocket", 10, 1, args.sessions, core=core)  # warm-up
        cpu0, ctx0, steal0, wall = cpu_seconds_of(pids), switches(pids), steal_and_total(), \
            time.monotonic()
        got = cgen.connect_loop(daemon.url, "websocket", args.concurrency, args.seconds,
                                args.sessions, core=core)
        cpu, wall = cpu_seconds_of(pids) - cpu0, time.monotonic() - wall
        ctx, steal = switches(pids), steal_and_total()
        done = max(1, got["done"])
        return {"setup": setup, "rate": round(got["rate"], 1),
                "cpu_ms_per_connect": round(1000 * cpu / done, 3),
                "daemon_cores_busy": round(cpu / wall, 2),
                "generator_cores_busy": round(got["gen_cpu_s"] / wall, 2),
                "voluntary_per_connect": round((ctx[0] - ctx0[0]) / done, 2),
                "involuntary_per_connect": round((ctx[1] - ctx0[1]) / done, 2),
                "steal_pct": round(100 * (steal[0] - steal0[0]) / max(1, steal[1] - steal0[1]), 1),
                "errors": got["errors"]}
    finally:
        for proc in extra:
            proc.kill()
            proc.wait()
        daemon.stop(15)


def summary(runs: list[dict]) -> dict:
    result = {}
    for setup in dict.fromkeys(r["setup"] for r in runs):
        mine = [r for r in runs if r["setup"] == setup]
        result[setup] = {key: statistics.median(r[key] for r in mine)
                         for key in ("rate", "cpu_ms_per_connect", "daemon_cores_busy",
                                     "generator_cores_busy", "involuntary_per_connect")}
    if "one-own-core" in result and "one-shared-core" in result:
        result["two_core_ceiling"] = round(
            2 * result["one-shared-core"]["rate"] / result["one-own-core"]["rate"], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-placement-"))
    redis = harness.Redis(tmp)
    runs = []
    try:
        stack.seed(redis.port, args.sessions)
        for _ in range(args.rounds):
            for setup in args.setups.split(","):
                runs.append(one_run(setup, tmp, redis, args))
                print(json.dumps(runs[-1]), flush=True)
    finally:
        redis.stop()
    report = {"args": vars(args), "runs": runs, "summary": summary(runs)}
    (BENCH / "results" / "worker_placement.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
