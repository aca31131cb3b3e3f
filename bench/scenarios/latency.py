"""PUBLISH -> receipt for one user, while other sockets are held."""

from __future__ import annotations

from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import rounded_pct


def run(stack: Stack, server: Server, publishes: int, below: int) -> dict:
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("user_latency", count=publishes, below=below)
    lat = result["latencies"]
    out = {"count": len(lat), "timeouts": result["timeouts"],
           "p50_ms": rounded_pct(lat, 50, 3), "p99_ms": rounded_pct(lat, 99, 3),
           "latencies_ms": [round(v, 3) for v in lat], **window.stop()}
    log(f"    PUBLISH->receipt one user: p50 {out['p50_ms']:.2f} ms, "
        f"p99 {out['p99_ms']:.2f} ms")
    return out
