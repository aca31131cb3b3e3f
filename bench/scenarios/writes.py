"""Side load A (issue 5): the server's cost under Redis writes unrelated to it.

A fresh server holds ``--held`` authorized idle sockets, then for ``--window``
seconds per phase (see bench/side_loads.py): ``idle``, ``unrelated``,
``unrelated+del``, ``rewrites`` (the writer program, bench/programs/writer.py).
Reported per phase: CPU of the server, redis, the generator and the writer,
and the bytes the server received from redis.
"""

from __future__ import annotations

import re
import subprocess
import time

from bench.lib import pyspy
from bench.lib.helpers import Helper
from bench.lib.paths import BENCH, OUT
from bench.lib.procstat import CpuWindow, cpu_seconds, rss_kib, wait_idle
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack

PHASES = ("idle", "unrelated", "unrelated+del", "rewrites")
WRITER = BENCH / "programs" / "writer.py"
SIDE_OUT = OUT / "side_loads"


def redis_bytes_in(pid: int, redis_port: int) -> int:
    """Bytes process ``pid`` has received on its open connections to redis (ss -ti)."""
    text = subprocess.run(["ss", "-tinpH", "state", "established",
                           f"( dport = :{redis_port} )"], capture_output=True, text=True).stdout
    total, mine = 0, False
    for line in text.splitlines():
        if not line[:1].isspace():
            mine = f"pid={pid}," in line
        elif mine and (m := re.search(r"bytes_received:(\d+)", line)):
            total += int(m.group(1))
    return total


class FromRedis:
    """Bytes the server received from redis over a window (notifications, replies)."""

    def __init__(self, pid: int, redis_port: int):
        self.pid, self.port = pid, redis_port
        self.t0, self.start = time.monotonic(), redis_bytes_in(pid, redis_port)

    def stop(self) -> dict:
        got = redis_bytes_in(self.pid, self.port) - self.start
        return {"server_from_redis_bytes_per_s": round(got / (time.monotonic() - self.t0), 1)}


def run(stack: Stack, kind: str, args) -> dict:
    """One fresh server: hold the sockets, then every phase of ``args.phases``."""
    stack.reset_notifications()
    server = stack.server(kind, args.daemon_cmd, args.daemon_arg)
    try:
        lost_before = stack.gen.call("ping")["disconnects"]
        out = hold(stack, server, args.held)
        out["phases"] = phases(stack, server, args)
        ping = stack.gen.call("ping")
        out["held_after"] = ping["held"]
        out["disconnects"] = {k: v - lost_before.get(k, 0) for k, v in ping["disconnects"].items()
                              if v != lost_before.get(k, 0)}
    finally:
        stack.gen.call("release", keep=0)  # before the stop: no "transport close" counted
        server.stop()
    time.sleep(1.0)
    return out


def hold(stack: Stack, server: Server, n: int) -> dict:
    held = stack.gen.call("hold", url=server.url, first=0, n=n, concurrency=50)
    # Let the first keyspace-subscribe checks (a GET per new session) finish.
    settle = wait_idle(server.pid, cpu_seconds(server.pid), time.monotonic(), 0)
    time.sleep(3.0)
    return {"held": held["held"], "hold_failures": held["failures"],
            "settle_s": settle["busy_s"],
            "redis_pubsub_channels": int(stack.r.info("stats").get("pubsub_channels", -1)),
            "notify_keyspace_events": stack.r.command(
                "CONFIG", "GET", "notify-keyspace-events")[1],
            "rss_mib": round(rss_kib(server.pid) / 1024, 1)}


def phases(stack: Stack, server: Server, args) -> dict:
    """Each phase in order; a repeated one is named ``name#2``..."""
    out, seen = {}, {}
    for phase in args.phases.split(","):
        seen[phase] = seen.get(phase, 0) + 1
        name = phase if seen[phase] == 1 else f"{phase}#{seen[phase]}"
        out[name] = ph = measure(stack, server, phase, args)
        log(f"{server.kind:6} {name:14} server {ph['server_cpu_pct']:5.1f}% "
            f"redis {ph['redis_cpu_pct']:5.1f}% gen {ph['gen_cpu_pct']:5.1f}% "
            f"writer {ph.get('writer_cpu_pct', 0):5.1f}% noise {ph['noise_cpu_pct']:5.1f}%"
            f" | writes/s {ph.get('writes_per_s', 0)} | server us/write "
            f"{ph.get('server_us_per_write')} | busy after {ph.get('busy_after_s')} s")
    return out


def measure(stack: Stack, server: Server, phase: str, args) -> dict:
    """One phase, with py-spy on the daemon if ``args.profile`` names it."""
    spy, path = None, SIDE_OUT / f"profile-{phase}.txt"
    if phase in args.profile and server.kind == "daemon":
        spy = pyspy.record(stack.children, f"py-spy-{phase}", server.pid, args.window, path)
    out = idle(stack, server, args) if phase == "idle" else writing(stack, server, phase, args)
    pyspy.show(spy, path, phase)
    return out


def idle(stack: Stack, server: Server, args) -> dict:
    window, io = CpuWindow(stack.pids(server)), FromRedis(server.pid, stack.redis_port)
    time.sleep(args.window)
    return {**window.stop(), **io.stop()}


def writing(stack: Stack, server: Server, phase: str, args) -> dict:
    writer = Helper(stack.children, f"writer-{phase}", WRITER, [
        "--port", str(stack.redis_port), "--rate", str(args.rate),
        "--duration", str(args.window + 2.0), "--mix", phase, "--held", str(args.held)])
    time.sleep(1.0)
    window = CpuWindow({**stack.pids(server), "writer": writer.pid})
    io = FromRedis(server.pid, stack.redis_port)
    time.sleep(args.window)
    io_rates, cpu = io.stop(), window.stop()
    done = writer.finish()
    after = wait_idle(server.pid, cpu_seconds(server.pid), time.monotonic(), 0, limit=60.0)
    writes = done["rate"] * cpu["wall_s"]
    out = {**cpu, "writes_per_s": done["rate"], "writer": done,
           "server_us_per_write": round(1e6 * cpu["server_cpu_s"] / writes, 2),
           "redis_us_per_write": round(1e6 * cpu["redis_cpu_s"] / writes, 2),
           "busy_after_s": after["busy_s"]}
    if done["kinds"]["setex_held_session"]:
        out["rewrites_per_s"] = round(done["kinds"]["setex_held_session"] / done["seconds"], 1)
    return {**out, **io_rates}
