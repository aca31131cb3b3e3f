"""Event history (issue 13): authorized websocket connects with ``auth: {since}``
against without, while events are appended."""

from __future__ import annotations

import urllib.request

from bench.lib.loadgen import Generator
from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stats import median, pct
from bench.scenarios.connect import CONCURRENCY
from bench.scenarios.history_publish import turns

AUTHS = ("none", "since", "since-replay")  # since-replay: kept open until replayed
APPEND_RATE = 20  # events/s appended during the connect scenario
SINCE_LAG = 3  # the position a socket connects with is this many appends old


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
