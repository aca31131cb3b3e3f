#!/usr/bin/env python3
"""What the event history costs (issue 13): publishing through it against live only.

    python bench/history.py                      # everything, 3 runs (~5 min on 2 vCPUs)
    python bench/history.py --quick              # 1 run, small N: a smoke test
    python bench/history.py --only connect --runs 1

The harness of bench/run.py (bench/lib; the scenarios are
bench/scenarios/history_*.py): a private redis-server,
the daemon pinned to core 1, the Node generator (bench/loadgen.js) and redis
on core 0, sessions written by PHP. One daemon, two publish modes taking
turns (A/B/A/B...), so that noise from the shared machine hits both alike:

* ``live``: a raw PUBLISH of the message JSON to the channel (live only);
* ``history``: the append script (bridge/lua/append.lua) through EVALSHA,
  exactly as the PHP Emitter runs it; the daemon's tail reads it by XREAD.

Scenarios (``--only``): ``latency`` (PUBLISH -> receipt for one user while
1,000 sockets are held), ``fanout`` (to 1,000 and 10,000 sockets in room
"lobby"), ``connect`` (authorized websocket connects, 50 concurrent, with
``auth: {since}`` against without, closing at ``connect`` as bench/run.py's
``connect-ws`` does; and ``since-replay``, kept open until the replay
arrived; while events are appended at 20/s),
``memory`` (Redis memory of 10,000 appended 200-byte messages, in an empty
redis-server).

Results: bench/out/history.json (every run, raw) and bench/out/history.md
(medians over runs; history/live ratios, taken within each run, then the median).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.paths import OUT  # noqa: E402
from bench.lib.results import command_line, entry, log, save  # noqa: E402
from bench.lib.stack import Stack  # noqa: E402
from bench.lib.versions import versions  # noqa: E402
from bench.scenarios.history_connect import connect_ab  # noqa: E402
from bench.scenarios.history_memory import MEMORY_EVENTS, MESSAGE_BYTES, memory_scenario  # noqa: E402
from bench.scenarios.history_publish import hold_scenarios  # noqa: E402
from bench.scenarios.history_report import report  # noqa: E402

SCENARIOS = ("latency", "fanout", "connect", "memory")


# --- the run ----------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, small N (smoke test)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=[],
                        metavar="SCENARIO", help=f"repeatable: {', '.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, help="runs (default 3, quick 1)")
    parser.add_argument("--duration", type=float,
                        help="seconds per connect segment (default 2; 6 turns per run)")
    parser.add_argument("--daemon-cmd", default="", help="as for bench/run.py")
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="extra argument for session-bridge serve (repeatable)")
    return parser.parse_args(argv)


def sizes_for(quick: bool) -> dict:
    if quick:
        return {"small": 200, "large": 1000, "fanout_reps": 3, "publishes": 50, "turns": 2}
    return {"small": 1000, "large": 10000, "fanout_reps": 5, "publishes": 500, "turns": 6}


def one_run(wanted: set, args, stack: Stack, sizes: dict, duration: float) -> dict:
    run: dict = {}
    pool = 2 * sizes["large"]
    if wanted & {"latency", "fanout"}:
        server = stack.server("daemon", args.daemon_cmd, args.daemon_arg)
        try:
            run.update(hold_scenarios(wanted, server, stack.gen, stack.pids(server), sizes))
        finally:
            server.stop()
            stack.gen.call("release", keep=0)
    if "connect" in wanted:
        server = stack.server("daemon", args.daemon_cmd, args.daemon_arg)
        try:
            run["connect"] = connect_ab(server, stack.gen, stack.pids(server), duration, pool,
                                        sizes["turns"])
        finally:
            server.stop()
    if "memory" in wanted:
        run["memory"] = memory_scenario(stack.children, MEMORY_EVENTS, MESSAGE_BYTES)
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = set(args.only or SCENARIOS)
    sizes = sizes_for(args.quick)
    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or 2.0
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "sizes": sizes,
               "command": command_line("bench/history.py", argv), "duration_s": duration,
               "runs": []}
    log(f"history bench: {', '.join(s for s in SCENARIOS if s in wanted)}; {runs} run(s)")
    stack = Stack(2 * sizes["large"])
    try:
        results["fd_limit"] = stack.fds
        log(f"seeded {stack.seeded['written']} PHP sessions")
        for rep in range(runs):
            log(f"run {rep + 1}")
            results["runs"].append(one_run(wanted, args, stack, sizes, duration))
            save(results, "history.json")
        stack.quit()
    finally:
        stack.stop()
    results["versions"] = versions()
    save(results, "history.json")
    (OUT / "history.md").write_text(report(results))
    log(f"done: {OUT / 'history.md'}, {OUT / 'history.json'}")
    return 0


if __name__ == "__main__":
    entry(main)
