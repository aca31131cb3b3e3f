"""Event history (issue 13), sockets held: PUBLISH -> receipt for one user and
fan-out to room "lobby", the two publish modes taking turns on one daemon:
``live`` (a raw PUBLISH) and ``history`` (the append script, as the PHP
Emitter runs it)."""

from __future__ import annotations

import time

from bench.lib.loadgen import Generator
from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stats import median, pct
from bench.scenarios.connect import CONCURRENCY

MODES = ("live", "history")


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
