"""Closing ``close`` of the held sockets at once while the rest stay: how long is
the server busy? (python-socketio's disconnect scans every room: O(sockets)
per disconnect.)"""

from __future__ import annotations

import time

from bench.lib.procstat import cpu_seconds, wait_idle
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack


def run(stack: Stack, server: Server, close: int, held: int) -> dict:
    cpu0, t_release = cpu_seconds(server.pid), time.monotonic()
    stack.gen.call("release", keep=held - close, until=held)
    out = wait_idle(server.pid, cpu0, t_release, close)
    out["sockets_left"] = stack.gen.call("ping")["held"]
    log(f"    closing {close} of {held} sockets at once kept the server busy for "
        f"{out['busy_s']} s ({out['cpu_s']} CPU s)")
    return out
