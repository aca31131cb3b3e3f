"""Server memory per idle authorized socket: (RSS_N - RSS_baseline) / N."""

from __future__ import annotations

import time

from bench.lib.procstat import CpuWindow, rss_kib
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.scenarios.connect import CONCURRENCY

SETTLE_S = 2.0


def level(stack: Stack, server: Server, opened: int, n: int, baseline: int) -> dict:
    """Hold sockets ``opened``..``n``-1 too, let the server settle, read its RSS."""
    window = CpuWindow(stack.pids(server))
    held = stack.gen.call("hold", url=server.url, first=opened, n=n, concurrency=CONCURRENCY)
    cpu = window.stop()
    time.sleep(SETTLE_S)
    rss = rss_kib(server.pid)
    out = {"n": n, "held": held["held"], "failures": held["failures"],
           "connect_seconds": round(held["seconds"], 2), "rss_kib": rss,
           "kib_per_socket": round((rss - baseline) / max(held["held"], 1), 2),
           "gen_rss_kib": rss_kib(stack.gen.pid), "connect_cpu": cpu}
    log(f"    {n:>6} sockets: RSS {rss / 1024:.1f} MiB, "
        f"{out['kib_per_socket']:.1f} KiB/socket, connected in {held['seconds']:.1f}s"
        + (f", failures {held['failures']}" if held["failures"] else ""))
    return out
