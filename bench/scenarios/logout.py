"""DEL of a session -> its socket disconnected, while other sockets are held.

The logged-out sessions are the top ``logouts`` of the seeded range (sockets
opened for this), so the held ones stay logged in; ``Stack.reseed()`` puts
them back afterwards.
"""

from __future__ import annotations

import time

from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import rounded_pct
from bench.scenarios.connect import CONCURRENCY


def run(stack: Stack, server: Server, held: int, sizes: dict) -> dict:
    count, end = sizes["logouts"], 2 * sizes["large"]
    stack.gen.call("hold", url=server.url, first=end - count, n=end, concurrency=CONCURRENCY)
    time.sleep(1.0)
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("logout", first=end - count, count=count)
    lat = result["latencies"]
    out = {"count": len(lat), "timeouts": result["timeouts"],
           "sockets_connected": held + count,
           "session_ended_seen": result["session_ended_seen"],
           "p50_ms": rounded_pct(lat, 50, 3), "p99_ms": rounded_pct(lat, 99, 3),
           "latencies_ms": [round(v, 3) for v in lat], **window.stop()}
    log(f"    DEL->disconnect ({held} other sockets connected): p50 "
        f"{out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
        f"{result['timeouts']} timeouts, session_ended seen "
        f"{result['session_ended_seen']}/{len(lat)}")
    return out
