#!/usr/bin/env python3
"""The session-bridge benchmark: the daemon against a plain Node peer, same harness.

    python bench/run.py                       # everything, 3 runs each (~10 min on 2 vCPUs)
    python bench/run.py --quick               # 1 run, small N: a smoke test (~2 min)
    python bench/run.py --only connect-ws --only memory --servers daemon

What it starts (each in its own process group, all stopped at the end, also
on Ctrl-C or failure): a private redis-server (free port, ``--save ''``), the
server under test pinned to core 1 (``taskset -c 1``), and the load generator
(``bench/loadgen.js``: Node, socket.io-client + ioredis) with redis on core 0.
Sessions are written by PHP itself (``seed_sessions.php``: Predis's session
handler, default ``php`` serialize handler, ~1.3-1.5 KB each).

Every scenario reports, besides its own figures, the CPU seconds the server,
the generator and redis used while it ran, so a saturated generator shows.
The machine is shared: CPU time taken by other processes during a scenario
is reported as ``noise_cpu_pct``.

The scenarios are bench/scenarios/connect.py, held.py (memory, fanout,
latency, logout, mass_disconnect) and daemon_profile.py; the harness is bench/lib/.

Results: ``bench/out/results.json`` (every run, raw), ``bench/out/report.md``
(medians of the runs and daemon/peer ratios) and the plots
``bench/out/connect_latency_cdf.png`` and ``bench/out/memory_per_socket.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib import plots, run_report  # noqa: E402
from bench.lib.paths import OUT  # noqa: E402
from bench.lib.placement import HAVE_TASKSET  # noqa: E402
from bench.lib.results import command_line, entry, fresh_logs, log, save  # noqa: E402
from bench.lib.servers import SERVERS  # noqa: E402
from bench.lib.stack import Stack  # noqa: E402
from bench.lib.versions import versions  # noqa: E402
from bench.scenarios import connect, daemon_profile, held  # noqa: E402

CONNECT_SCENARIOS = tuple(connect.NAMES)
HOLD_SCENARIOS = held.NAMES
SCENARIOS = CONNECT_SCENARIOS + HOLD_SCENARIOS
QUICK_SIZES = {"small": 200, "mid": 500, "large": 1000, "fanout_reps": 3, "publishes": 50,
               "logouts": 30, "close": 200}
FULL_SIZES = {"small": 1000, "mid": 5000, "large": 10000, "fanout_reps": 5, "publishes": 200,
              "logouts": 200, "close": 1000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, small N (smoke test)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=[],
                        metavar="SCENARIO", help=f"run only this scenario (repeatable): "
                        f"{', '.join(SCENARIOS)}")
    parser.add_argument("--servers", default="daemon,peer",
                        help="comma list of servers: daemon, peer (default both)")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per connect scenario run")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--daemon-cmd", default="",
                        help="command that runs the daemon instead of .venv/bin/session-bridge "
                        "(e.g. '.venv/bin/python bench/side_loads.py daemon-at SHA')")
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="extra argument for session-bridge serve (repeatable)")
    args = parser.parse_args(argv)
    args.wanted = set(args.only or SCENARIOS)
    args.server_list = [s for s in args.servers.split(",") if s]
    if not set(args.server_list) <= set(SERVERS):
        parser.error(f"--servers takes {', '.join(SERVERS)}")
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.sizes = QUICK_SIZES if args.quick else FULL_SIZES
    args.pool = 2 * args.sizes["large"]  # held sockets use 0..large-1, warm-ups large..
    return args


def connect_scenarios(stack: Stack, kind: str, args, rep: int, probe: dict) -> dict:
    """Every wanted connect scenario on one fresh server."""
    out: dict = {}
    todo = [s for s in CONNECT_SCENARIOS if s in args.wanted]
    if not todo:
        return out
    server = stack.server(kind, args.daemon_cmd, args.daemon_arg)
    try:
        if kind not in probe["negotiated"]:
            probe["negotiated"][kind] = stack.gen.call("probe", url=server.url)["negotiated"]
        connect.warm_up(stack, server, args.pool)
        for name in todo:
            out[name] = connect.run(name, stack, server, args.duration, args.pool)
            connect.show(rep, kind, name, out[name])
    finally:
        server.stop()
    return out


def held_scenarios(stack: Stack, kind: str, args, rep: int) -> dict:
    """The held-socket scenarios on one fresh server."""
    if not args.wanted & set(HOLD_SCENARIOS):
        return {}
    log(f"run {rep + 1} {kind:6} held sockets")
    server = stack.server(kind, args.daemon_cmd, args.daemon_arg)
    try:
        out = {"hold": held.run(args.wanted, stack, server, args.sizes)}
    finally:
        server.stop()
        stack.gen.call("release", keep=0)
    if "logout" in args.wanted:
        stack.reseed()  # put the logged-out sessions back
    return out


def one_run(stack: Stack, args, rep: int, probe: dict) -> dict:
    """Each server in turn (A/B, then B/A: drift hits both alike)."""
    order = args.server_list if rep % 2 == 0 else args.server_list[::-1]
    return {kind: {**connect_scenarios(stack, kind, args, rep, probe),
                   **held_scenarios(stack, kind, args, rep)} for kind in order}


def measure(args, results: dict) -> None:
    stack = Stack(args.pool)
    try:
        results["fd_limit"] = stack.fds
        results["sessions"] = seeded = stack.seeded
        log(f"seeded {seeded['written']} PHP sessions ({seeded['bytes_min']}-"
            f"{seeded['bytes_max']} bytes) in {seeded['seconds']}s")
        results["probe"] = {"offered": stack.gen.call("probe")["offered"], "negotiated": {}}
        for rep in range(args.runs):
            results["runs"].append(one_run(stack, args, rep, results["probe"]))
            save(results, "results.json")
        if "daemon" in args.server_list and "connect-ws" in args.wanted and not args.no_profile:
            log("profiling the daemon (py-spy) during connect-ws")
            results["profile"] = daemon_profile.run(stack, args.duration, args.pool,
                                                    args.daemon_cmd, args.daemon_arg)
        stack.quit()
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fresh_logs()
    t0 = time.monotonic()
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "command": command_line("bench/run.py", argv), "runs_per_scenario": args.runs,
               "sizes": args.sizes, "duration_s": args.duration, "versions": versions(),
               "runs": []}
    log(f"bench: {', '.join(s for s in SCENARIOS if s in args.wanted)} on "
        f"{', '.join(args.server_list)}; {args.runs} run(s); taskset "
        f"{'yes' if HAVE_TASKSET else 'NO'}")
    measure(args, results)
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    save(results, "results.json")
    run_report.write(results, OUT / "report.md")
    made = plots.draw(results)
    log(f"done in {results['elapsed_s']:.0f}s: {OUT / 'report.md'}, {OUT / 'results.json'}"
        + (", " + ", ".join(str(OUT / m) for m in made) if made else ""))
    return 0


if __name__ == "__main__":
    entry(main)
