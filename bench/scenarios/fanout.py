"""Fan-out: one event to room "lobby", which every held socket is in."""

from __future__ import annotations

from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import median


def run(stack: Stack, server: Server, reps: int) -> dict:
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("fanout", room="lobby", reps=reps, gap_ms=500)
    cpu = window.stop()
    times = [r["all_ms"] for r in result["results"] if "all_ms" in r]
    firsts = [r["first_ms"] for r in result["results"] if "first_ms" in r]
    summary = {"sockets": result["sockets"], "reps": reps,
               "timeouts": sum(1 for r in result["results"] if r.get("timeout")),
               "all_ms_median": round(median(times), 2) if times else None,
               "first_ms_median": round(median(firsts), 2) if firsts else None,
               "all_ms": [round(t, 2) for t in times],
               "server_cpu_ms_per_event": round(1000 * cpu["server_cpu_s"] / reps, 2),
               "gen_cpu_ms_per_event": round(1000 * cpu["gen_cpu_s"] / reps, 2), **cpu}
    log(f"    fan-out to {result['sockets']}: all received in "
        f"{summary['all_ms_median']} ms (median of {reps})")
    return summary
