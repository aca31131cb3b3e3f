"""py-spy on the daemon during the authorized websocket connect scenario: a
flame graph (bench/out/profile.svg) and the raw stacks, summarized."""

from __future__ import annotations

import time

from bench.lib import pyspy
from bench.lib.paths import OUT
from bench.lib.results import log
from bench.lib.stack import Stack
from bench.scenarios.connect import CONCURRENCY, warm_up


def run(stack: Stack, duration: float, sessions: int, daemon_cmd: str,
        daemon_args: list[str]) -> dict:
    if pyspy.spy_command() is None:
        log("  (py-spy not installed: no profile; pip install -r bench/requirements.txt)")
        return {}
    for fmt, path in (("flamegraph", OUT / "profile.svg"), ("raw", OUT / "profile.txt")):
        server = stack.server("daemon", daemon_cmd, daemon_args)
        try:
            warm_up(stack, server, sessions, concurrency=10)
            recorder = pyspy.record(stack.children, f"py-spy-{fmt}", server.pid,
                                    int(duration) + 1, path, fmt)
            time.sleep(1.0)
            stack.gen.call("connect_loop", url=server.url, transport="websocket",
                           concurrency=CONCURRENCY, duration=duration, mode="auth",
                           sessions=sessions)
            recorder.wait(timeout=duration + 30)
        finally:
            server.stop()
    return pyspy.summarize(OUT / "profile.txt") if (OUT / "profile.txt").exists() else {}
