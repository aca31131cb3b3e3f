#!/usr/bin/env python3
"""Side loads: the daemon's cost under unrelated Redis writes, and flood isolation.

    python bench/side_loads.py writes      # A: 10,000 idle sockets, then 5,000 SET/s (~15 min)
    python bench/side_loads.py flood       # B: 127.0.0.3 floods, 127.0.0.2 connects (~5 min)
    python bench/side_loads.py writes --servers daemon --runs 1 --window 10   # quicker
    python bench/side_loads.py memory      # tracemalloc: idle-socket memory by allocation site
    python bench/side_loads.py daemon-at REV [serve flags]   # the daemon of a commit
    python bench/side_loads.py daemon-exp REV [serve flags]  # same, with measuring hooks

Add ``--daemon-cmd ".venv/bin/python bench/side_loads.py daemon-at SHA"`` to
measure a fixed commit (the work tree is what runs otherwise).

``writes`` and ``flood`` run on bench/lib (processes in their own groups, CPU
accounting from /proc, the Node load generator, PHP-seeded sessions) with
run.py's placement: the server alone on core 1, redis, the generator and the
helper programs (bench/programs/) on core 0. Every process is stopped at the
end, also on Ctrl-C or failure. The scenarios: bench/scenarios/writes.py,
flood.py, allocations.py.

``writes`` (issue 5). A fresh server holds 10,000 authorized idle sockets,
one per seeded session, so the daemon has 10,000 keyspace SUBSCRIBEs. Then,
for ``--window`` seconds each (25 s: Engine.IO pings every socket every 25 s, so
each window holds exactly one round of pings), CPU of the server and of redis:

* ``idle``: no traffic but the Engine.IO pings;
* ``unrelated``: a writer (redis-py, a pipeline of 50 commands every 10 ms)
  sends 5,000 writes/s to keys the server holds no socket for: 80% SETEX of
  random 32-hex ids with a session-sized value (what Predis writes for the
  visitors of other nodes), 20% SET of ``cache:``/``rate:`` keys;
* ``unrelated+del``: the same with one write in ten a DEL of an id written
  earlier (logouts elsewhere): the Node peer receives every ``del`` of the
  database, the daemon none;
* ``rewrites``: one write in five is a held session rewritten with its own
  content (SETEX, what PHP does at the end of every page load), the rest as
  ``unrelated``. The daemon re-reads a session on its ``set`` event: this one
  costs, per rewrite. The peer does not watch ``set`` at all.

``notify-keyspace-events`` is reset to "" before each server starts; each
server turns on the flags it needs (daemon ``Kg$xe``, peer ``Egx``).

``flood`` (issue 9). A daemon with the default limits (``--handshake-rate
50``: 50 Socket.IO handshakes/s per address, burst 100; 100 new Engine.IO
sessions/s per address). A probe process connects from 127.0.0.2 (bound
source address, websocket-client): TCP connect, Engine.IO open, ``40``,
wait for the ``40{...}`` answer, close; ``--probes`` connects, one every
``--probe-interval`` s (below the per-address limit). The probe runs
unloaded, then while the generator floods from 127.0.0.3 (``connect_loop``,
50 concurrent connectors, ``unknown`` session cookies, then authorized
ones). Reported: the probe's p50/p99 and the ratio to unloaded, the flood's
attempts and how many were refused ``rate_limited`` (the daemon's
``bridge_connects_total``), and the daemon's CPU. The probe and redis run at
``nice -10`` on core 0 so that the flood generator sharing that core does not
delay them; ``--no-nice`` turns that off.

``memory``: the daemon under tracemalloc (``daemon-exp``), snapshots before and
after holding ``--sockets`` idle sockets, the difference per socket by the
library frame nearest each allocation.

``daemon-at REV`` runs ``session-bridge`` from ``git archive REV bridge`` (in
/tmp, once per commit) instead of the work tree, whose uncommitted edits may be
half-way: ``--daemon-cmd ".venv/bin/python bench/side_loads.py daemon-at SHA"``
works here and in run.py. Give a commit id, not HEAD: HEAD is resolved at each
daemon start and moves when someone commits during a run. ``daemon-exp`` does
the same with the hooks of bench/lib/daemon_hooks.py (tracemalloc snapshots,
a log of long garbage collections, Python's default GC thresholds).

Output: ``bench/out/side_loads/<scenario>.json`` (every run), ``memory.md``,
and the medians on stdout as markdown tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] in ("daemon-at", "daemon-exp"):
    from bench.lib import daemon_at  # before anything else is imported

    launch = daemon_at.daemon_at if sys.argv[1] == "daemon-at" else daemon_at.daemon_exp
    launch(sys.argv[2], sys.argv[3:])  # replaces this process

import argparse  # noqa: E402
import time  # noqa: E402

from bench.lib.results import command_line, entry, save  # noqa: E402
from bench.lib.stack import Stack  # noqa: E402
from bench.programs import probe, writer  # noqa: E402
from bench.scenarios import allocations, flood, flood_report, writes, writes_report  # noqa: E402

HELD = 10_000


def common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--daemon-cmd", default="",
                   help="command that runs the daemon instead of .venv/bin/session-bridge "
                   "(e.g. '.venv/bin/python bench/side_loads.py daemon-at HEAD')")
    p.add_argument("--daemon-arg", action="append", default=[])


def repeat(stack: Stack, runs: int, one_run, results: dict, name: str) -> None:
    """``runs`` times ``one_run(stack, rep)`` into ``results["runs"]``, saved after each
    run (a long scenario that fails late keeps what it measured); stops ``stack``."""
    try:
        for rep in range(runs):
            results["runs"].append(one_run(stack, rep))
            save(results, f"side_loads/{name}", indent=1)
        stack.quit()
    finally:
        stack.stop()
    save(results, f"side_loads/{name}", indent=1)


def writes_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="side_loads.py writes")
    common_args(p)
    p.add_argument("--servers", default="daemon,peer")
    p.add_argument("--window", type=float, default=25.0,
                   help="seconds measured per phase (25: one Engine.IO ping round of every "
                   "socket in each window)")
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--held", type=int, default=HELD)
    p.add_argument("--profile", action="append", default=[], metavar="PHASE",
                   help="py-spy the daemon during this phase (skews its CPU figure)")
    p.add_argument("--phases", default=",".join(writes.PHASES),
                   help="phases in order (a repeated phase is reported as name#2)")
    return p.parse_args(argv)


def writes_main(argv: list[str]) -> int:
    args = writes_args(argv)
    servers = [s for s in args.servers.split(",") if s]
    results = {"scenario": "writes", "command": command_line("bench/side_loads.py writes", argv),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "held": args.held,
               "rate": args.rate, "window_s": args.window, "runs": []}

    def one_run(stack: Stack, rep: int) -> dict:
        order = servers if rep % 2 == 0 else servers[::-1]
        return {kind: writes.run(stack, kind, args) for kind in order}

    repeat(Stack(args.held), args.runs, one_run, results, "writes.json")
    print(writes_report.report(results))
    return 0


def flood_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="side_loads.py flood")
    common_args(p)
    p.add_argument("--probes", type=int, default=400)
    p.add_argument("--probe-interval", type=float, default=0.04)
    p.add_argument("--floods", default="unknown,auth",
                   help="loadgen connect_loop modes of the flood (unknown, nocookie, auth)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--flood-source", default="127.0.0.3",
                   help="the flood's source address (127.0.0.1 counts as a local proxy, "
                        "limited per X-Forwarded-For instead of at accept)")
    p.add_argument("--no-nice", action="store_true")
    p.add_argument("--probe-core", type=int, default=0, choices=(0, 1),
                   help="0: beside the flood generator and redis (default); 1: beside the "
                        "daemon, so the flooder's own CPU does not slow the probe")
    p.add_argument("--profile", action="append", default=[], metavar="MODE",
                   help="py-spy the daemon during the flood of this mode (skews its CPU)")
    p.add_argument("--no-control", action="store_true",
                   help="skip the control phase (the flood aimed at a Node peer on core 0)")
    args = p.parse_args(argv)
    args.daemon_arg = ["--handshake-rate", "50", *args.daemon_arg]  # the default, explicitly
    return args


def flood_main(argv: list[str]) -> int:
    args = flood_args(argv)
    floods = [f for f in args.floods.split(",") if f]
    results = {"scenario": "flood", "command": command_line("bench/side_loads.py flood", argv),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "probes": args.probes,
               "probe_interval_s": args.probe_interval, "nice": not args.no_nice,
               "probe_core": args.probe_core, "concurrency": args.concurrency,
               "flood_source": args.flood_source, "runs": []}
    stack = Stack(flood.POOL + flood.PROBE_SESSIONS, redis_nice=0 if args.no_nice else -10)
    repeat(stack, args.runs, lambda stack, rep: flood.run(stack, args, floods), results,
           "flood.json")
    print(flood_report.report(results))
    return 0


def memory_main(argv: list[str]) -> int:
    """tracemalloc snapshots of the daemon before and after holding --sockets sockets."""
    p = argparse.ArgumentParser(prog="side_loads.py memory")
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--rev", default="HEAD", help="commit whose bridge/ runs")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    text = allocations.report(args, argv, allocations.snapshots(args.sockets, args.rev,
                                                                args.frames))
    allocations.write(text)
    print(text)
    return 0


COMMANDS = {"writes": writes_main, "flood": flood_main, "memory": memory_main,
            "writer": writer.main, "probe": probe.main}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[1])
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    entry(main, sys.argv[1:])
