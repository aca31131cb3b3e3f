#!/usr/bin/env python3
"""What the event history costs (issue 13): publishing through it against live only.

    python bench/history.py                      # everything, 3 runs (~5 min on 2 vCPUs)
    python bench/history.py --quick              # 1 run, small N: a smoke test
    python bench/history.py --only connect --runs 1

The harness of bench/run.py (bench/lib): a private redis-server,
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
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.loadgen import Generator  # noqa: E402
from bench.lib.miniredis import MiniRedis  # noqa: E402
from bench.lib.paths import OUT, ROOT  # noqa: E402
from bench.lib.procstat import CpuWindow  # noqa: E402
from bench.lib.results import command_line, entry, log, save  # noqa: E402
from bench.lib.servers import Server  # noqa: E402
from bench.lib.stack import Stack, start_redis  # noqa: E402
from bench.lib.stats import median, pct  # noqa: E402
from bench.lib.versions import versions  # noqa: E402
from bench.scenarios.connect import CONCURRENCY  # noqa: E402
from devtools.children import Children  # noqa: E402

SCENARIOS = ("latency", "fanout", "connect", "memory")
MODES = ("live", "history")
AUTHS = ("none", "since", "since-replay")  # since-replay: kept open until replayed
STREAM, RETENTION = "{session-bridge}:history", "{session-bridge}:retention"
APPEND_ARGS = (10000, 300)  # history_size, history_seconds: the Emitter's defaults
APPEND_RATE = 20  # events/s appended during the connect scenario
SINCE_LAG = 3  # the position a socket connects with is this many appends old

MESSAGE_BYTES = 200  # the memory scenario's message JSON, in bytes
MEMORY_EVENTS = 10_000


# --- publish -> receipt and fan-out, sockets held ------------------------------

def turns(items: tuple, k: int) -> tuple:
    """``items`` in the order of turn k: A/B, then B/A, ... (drift hits both alike)."""
    return items if k % 2 == 0 else items[::-1]


def hold_scenarios(wanted: set, server: Server, gen: Generator, pids: dict, sizes: dict) -> dict:
    small, large = sizes["small"], sizes["large"]
    gen.call("connect_loop", url=server.url, transport="websocket", concurrency=10,
             duration=1.0, mode="auth", sessions=2 * large, first=large)  # warm-up
    time.sleep(2.0)
    out: dict = {}
    for n in (small, large) if "fanout" in wanted else (small,):
        held = gen.call("hold", url=server.url, n=n, concurrency=CONCURRENCY)
        log(f"    {held['held']} sockets held" + (
            f", failures {held['failures']}" if held["failures"] else ""))
        time.sleep(2.0)
        if n == small and "latency" in wanted:
            out["latency"] = latency_ab(gen, pids, sizes["publishes"], small)
        if "fanout" in wanted:
            out[f"fanout_{n}"] = fanout_ab(gen, pids, sizes["fanout_reps"])
    return out


def latency_ab(gen: Generator, pids: dict, count: int, below: int) -> dict:
    """One user's PUBLISH -> receipt; the modes alternate publish by publish."""
    window = CpuWindow(pids)
    result = gen.call("user_latency", count=2 * count, below=below, modes=list(MODES))
    cpu = window.stop()
    out = {"timeouts": result["timeouts"], "noise_cpu_pct": cpu["noise_cpu_pct"]}
    for mode in MODES:
        lat = result["by_mode"][mode]
        out[mode] = {"count": len(lat), "p50_ms": round(pct(lat, 50), 3),
                     "p99_ms": round(pct(lat, 99), 3)}
    log("    PUBLISH->receipt one user: " + ", ".join(
        f"{m} p50 {out[m]['p50_ms']:.2f} p99 {out[m]['p99_ms']:.2f} ms" for m in MODES)
        + f" | noise {cpu['noise_cpu_pct']}%")
    return out


def fanout_ab(gen: Generator, pids: dict, reps: int) -> dict:
    """Fan-out to room "lobby", one event per mode per turn, each in its own CPU window."""
    events: dict = {mode: [] for mode in MODES}
    for k in range(reps):
        for mode in turns(MODES, k):
            window = CpuWindow(pids)
            result = gen.call("fanout", room="lobby", reps=1, gap_ms=500, mode=mode)
            events[mode].append({**result["results"][0], "sockets": result["sockets"],
                                 **window.stop()})
    out = {mode: fanout_summary(events[mode]) for mode in MODES}
    log(f"    fan-out to {events['live'][0]['sockets']}: " + ", ".join(
        f"{m} {out[m]['all_ms_median']} ms, {out[m]['server_cpu_ms_per_event']} ms CPU"
        for m in MODES) + f" | noise {out['live']['noise_cpu_pct']}/"
        f"{out['history']['noise_cpu_pct']}%")
    return out


def fanout_summary(events: list[dict]) -> dict:
    times = [e["all_ms"] for e in events if "all_ms" in e]
    return {"sockets": events[0]["sockets"], "reps": len(events),
            "timeouts": sum(1 for e in events if e.get("timeout")),
            "lost": sum(e.get("lost", 0) for e in events),
            "all_ms_median": round(median(times), 2) if times else None,
            "first_ms_median": round(median([e["first_ms"] for e in events
                                             if "first_ms" in e]), 2) if times else None,
            "all_ms": [round(t, 2) for t in times],
            "server_cpu_ms_per_event": round(
                1000 * sum(e["server_cpu_s"] for e in events) / len(events), 2),
            "noise_cpu_pct": median([e["noise_cpu_pct"] for e in events])}


# --- connects with and without auth.since ---------------------------------------

def connect_ab(server: Server, gen: Generator, pids: dict, duration: float,
               sessions: int, turns_count: int) -> dict:
    """Authorized websocket connects, ``auth: {since}`` or none, taking turns while
    events are appended; a since-socket is kept until it received its replay."""
    gen.call("appender_start", rate=APPEND_RATE, lag=SINCE_LAG)
    try:
        gen.call("connect_loop", url=server.url, transport="websocket",
                 concurrency=CONCURRENCY, duration=1.0, mode="auth", sessions=sessions)
        segments: dict = {auth: [] for auth in AUTHS}
        for k in range(turns_count):
            for auth in turns(AUTHS, k):
                replayed, window = replayed_total(server), CpuWindow(pids)
                result = gen.call("connect_loop", url=server.url, transport="websocket",
                                  concurrency=CONCURRENCY, duration=duration, mode="auth",
                                  sessions=sessions, auth=auth)
                segments[auth].append({**result, **window.stop(),
                                       "replayed": replayed_total(server) - replayed})
    finally:
        gen.call("appender_stop")
    out = {auth: connect_summary(segments[auth]) for auth in AUTHS}
    log("    connect-ws: " + ", ".join(
        f"{a} {out[a]['rate']}/s p99 {out[a]['p99_ms']} ms {out[a]['server_ms_per_connect']}"
        f" ms CPU, {out[a]['replayed_per_connect']} replayed" for a in AUTHS)
        + " | noise " + "/".join(str(out[a]["noise_cpu_pct"]) for a in AUTHS) + "%")
    return out


def replayed_total(server: Server) -> float:
    """The daemon's count of events replayed (its /metrics), to see that replays ran."""
    url = f"http://127.0.0.1:{server.admin}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("bridge_events_replayed_total "):
                return float(line.split()[1])
    return 0.0


def connect_summary(segments: list[dict]) -> dict:
    done = sum(s["done"] for s in segments)
    latencies = [v for s in segments for v in s["latencies"]]
    caught = [v for s in segments for v in s["caught_up"]]
    errors: dict = {}
    for s in segments:
        for kind, n in s["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    return {"done": done, "errors": errors,
            "replayed_per_connect": round(sum(s["replayed"] for s in segments) / max(done, 1), 2),
            "rate": round(done / sum(s["elapsed"] for s in segments), 1),
            "p50_ms": round(pct(latencies, 50), 2), "p99_ms": round(pct(latencies, 99), 2),
            "caught_up_p50_ms": round(pct(caught, 50), 2) if caught else None,
            "caught_up_p99_ms": round(pct(caught, 99), 2) if caught else None,
            "server_ms_per_connect": round(
                1000 * sum(s["server_cpu_s"] for s in segments) / max(done, 1), 3),
            "redis_ms_per_connect": round(
                1000 * sum(s["redis_cpu_s"] for s in segments) / max(done, 1), 3),
            "server_cpu_pct": median([s["server_cpu_pct"] for s in segments]),
            "gen_cpu_pct": median([s["gen_cpu_pct"] for s in segments]),
            "noise_cpu_pct": median([s["noise_cpu_pct"] for s in segments])}


# --- Redis memory of the history ------------------------------------------------------

def message_of(i: int, size: int) -> str:
    """A message JSON of the SPEC's publish format, exactly ``size`` bytes long."""
    head = {"event": "notice", "user": str(100000 + i % 10000),
            "data": {"seq": i, "body": ""}}
    pad = size - len(json.dumps(head, separators=(",", ":")))
    head["data"]["body"] = ("Your order left our warehouse today. " * 8)[:pad]
    text = json.dumps(head, separators=(",", ":"))
    assert len(text) == size, len(text)
    return text


def used_memory(r: MiniRedis) -> int:
    info = r.command("INFO", "memory")
    return int(next(line.split(":")[1] for line in info.splitlines()
                    if line.startswith("used_memory:")))


def memory_scenario(children: Children, count: int, size: int) -> dict:
    """Append ``count`` messages of ``size`` bytes with the script into an empty redis."""
    proc, port = start_redis(children, name="redis-memory")
    r = MiniRedis(port)
    try:
        sha = r.command("SCRIPT", "LOAD", (ROOT / "bridge" / "lua" / "append.lua").read_text())
        before = used_memory(r)
        for i in range(count):
            r.command("EVALSHA", sha, 2, STREAM, RETENTION, message_of(i, size), *APPEND_ARGS)
        usage = r.command("MEMORY", "USAGE", STREAM, "SAMPLES", "0")
        out = {"events": count, "message_bytes": size, "xlen": r.command("XLEN", STREAM),
               "memory_usage_bytes": usage, "used_memory_delta_bytes": used_memory(r) - before,
               "bytes_per_event": round(usage / count, 1)}
    finally:
        r.close()
        children.stop(proc)
    log(f"    memory: {count} events of {size} B: MEMORY USAGE {usage / 1024:.0f} KiB "
        f"({out['bytes_per_event']} B/event), used_memory "
        f"+{out['used_memory_delta_bytes'] / 1024:.0f} KiB, XLEN {out['xlen']}")
    return out


# --- report -------------------------------------------------------------------------------

# (label, scenario key, figure, unit, counts toward a 1.2x target)
PUBLISH_ROWS = [
    ("PUBLISH->receipt one user p50", "latency", "p50_ms", "ms", False),
    ("PUBLISH->receipt one user p99", "latency", "p99_ms", "ms", True),
]
FANOUT_ROWS = [
    ("all received", "all_ms_median", "ms", True),
    ("first received", "first_ms_median", "ms", False),
    ("server CPU per event", "server_cpu_ms_per_event", "ms", False),
]
CONNECT_ROWS = [
    ("connects/s", "rate", "/s", True),
    ("connect p50", "p50_ms", "ms", False),
    ("connect p99", "p99_ms", "ms", False),
    ("server CPU per connect", "server_ms_per_connect", "ms", False),
    ("redis CPU per connect", "redis_ms_per_connect", "ms", False),
    ("events replayed per connect (daemon's metric)", "replayed_per_connect", "", False),
    ("connect -> replay received p50", "caught_up_p50_ms", "ms", False),
    ("connect -> replay received p99", "caught_up_p99_ms", "ms", False),
]
TARGET = 1.2


def figures(runs: list[dict], scenario: str, side: str, key: str) -> list:
    return [run[scenario][side][key] for run in runs
            if scenario in run and run[scenario][side].get(key) is not None]


def ratios(runs: list[dict], scenario: str, a: str, b: str, key: str) -> list[float]:
    """b/a per run (the two sides measured interleaved within each run)."""
    return [run[scenario][b][key] / run[scenario][a][key] for run in runs
            if scenario in run and run[scenario][a].get(key) and run[scenario][b].get(key)]


def table_row(runs, label, scenario, a, b, key, unit, target, invert=False) -> str | None:
    if not any(scenario in run for run in runs):
        return None
    each = ratios(runs, scenario, b, a, key) if invert else ratios(runs, scenario, a, b, key)
    ratio = median(each)
    shown = "" if ratio is None else f"**{ratio:.2f}x**" if target else f"{ratio:.2f}x"
    verdict = ("" if not target or ratio is None else
               "yes" if ratio <= TARGET else "**no**")
    fa, fb = median(figures(runs, scenario, a, key)), median(figures(runs, scenario, b, key))
    if fa is None and fb is None:
        return None
    show = lambda v: "" if v is None else f"{v:.2f} {unit}"  # noqa: E731
    noise = [median([run[scenario][side].get("noise_cpu_pct", run[scenario].get(
        "noise_cpu_pct")) for side in (a, b)]) for run in runs if scenario in run]
    return (f"| {label} | {show(fa)} | {show(fb)} | {shown} | "
            f"{' / '.join(f'{r:.2f}' for r in each)} | {median(noise):.0f} % | {verdict} |")


def report(results: dict) -> str:
    runs = results["runs"]
    v = results["versions"]
    lines = [f"# session-bridge history benchmark ({results['started']})", "",
             f"command: `{results['command']}`; runs: {len(runs)}; machine: {v['cores']} cores, "
             f"{v['cpu']}; redis {v['redis-server']}, Python {v['python']}, Node {v['node']}; "
             f"bridge at {v['bridge_commit']}"]
    if any(k == "latency" or k.startswith("fanout_") for run in runs for k in run):
        lines += ["", "| figure (median of runs) | live | history | history/live | per run | "
                  "noise | target met |", "|---|---|---|---|---|---|---|"]
    for label, scenario, key, unit, target in PUBLISH_ROWS:
        lines.append(table_row(runs, label, scenario, "live", "history", key, unit, target))
    for n in sorted({int(k.split("_")[1]) for run in runs for k in run
                     if k.startswith("fanout_")}):
        for label, key, unit, target in FANOUT_ROWS:
            lines.append(table_row(runs, f"fan-out to {n}: {label}", f"fanout_{n}", "live",
                                   "history", key, unit, target))
    for since in AUTHS[1:] if any("connect" in run for run in runs) else ():
        lines += ["", f"| figure (median of runs) | no since | {since} | ratio | per run | "
                  "noise | target met |", "|---|---|---|---|---|---|---|"]
        for label, key, unit, target in CONNECT_ROWS:
            invert = key == "rate"  # a rate: the ratio is how many times fewer with since
            lines.append(table_row(runs, label, "connect", "none", since, key, unit,
                                   target and since == "since", invert))
    lines += memory_table(runs)
    return "\n".join(line for line in lines if line is not None) + "\n"


def memory_table(runs: list[dict]) -> list[str]:
    mem = [run["memory"] for run in runs if "memory" in run]
    if not mem:
        return []
    pick = lambda key: median([m[key] for m in mem])  # noqa: E731
    return ["", f"| Redis memory, {mem[0]['events']} events of {mem[0]['message_bytes']} B "
            "(median of runs) | bytes |", "|---|---|",
            f"| `MEMORY USAGE {STREAM}` (SAMPLES 0) | {pick('memory_usage_bytes'):,.0f} |",
            f"| per event | {pick('bytes_per_event'):,.1f} |",
            f"| used_memory delta | {pick('used_memory_delta_bytes'):,.0f} |",
            f"| XLEN | {pick('xlen'):,.0f} |"]


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
