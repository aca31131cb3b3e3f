"""One fresh server holding idle authorized sockets at growing counts.

Order: warm-up and baseline RSS; ``small`` sockets (memory, fan-out, one-user
latency, logout of extra sockets opened for it); ``mid`` and ``large`` (memory,
fan-out); then closing ``close`` of the ``large`` sockets at once. Session i is
held by socket i; logout uses sessions at the top of the seeded range, so the
held ones stay logged in.
"""

from __future__ import annotations

import time

from bench.lib.procstat import rss_kib
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.scenarios import fanout, latency, logout, mass_disconnect, memory
from bench.scenarios.connect import warm_up

NAMES = ("memory", "fanout", "latency", "logout")
SETTLE_S = 2.0


def counts(wanted: set[str], sizes: dict) -> list[int]:
    """The socket counts to hold, in order."""
    if "memory" in wanted:
        return [sizes["small"], sizes["mid"], sizes["large"]]
    if "fanout" in wanted:
        return [sizes["small"], sizes["large"]]
    return [sizes["small"]]


def run(wanted: set[str], stack: Stack, server: Server, sizes: dict) -> dict:
    levels = counts(wanted, sizes)
    large = sizes["large"]
    warm_up(stack, server, 2 * large, concurrency=10, first=large)
    time.sleep(SETTLE_S)  # then close those sockets, settle, baseline
    out: dict = {"rss_baseline_kib": rss_kib(server.pid), "levels": []}
    opened = 0
    for n in levels:
        out["levels"].append(memory.level(stack, server, opened, n, out["rss_baseline_kib"]))
        opened = n
        out.update(at_count(wanted, stack, server, n, sizes))
    if levels[-1] == large and large > sizes["small"]:
        out["mass_disconnect"] = mass_disconnect.run(stack, server, sizes["close"], large)
    return out


def at_count(wanted: set[str], stack: Stack, server: Server, n: int, sizes: dict) -> dict:
    """The scenarios measured while ``n`` sockets are held."""
    out = {}
    small = sizes["small"]
    if "fanout" in wanted and n in (small, sizes["large"]):
        out[f"fanout_{n}"] = fanout.run(stack, server, sizes["fanout_reps"])
    if n == small and "latency" in wanted:
        out["latency"] = latency.run(stack, server, sizes["publishes"], small)
    if n == small and "logout" in wanted:
        out["logout"] = logout.run(stack, server, small, sizes)
    return out
