"""Side load B (issue 9): one address floods the daemon, another connects.

The probe program (bench/programs/probe.py) connects from 127.0.0.2, one
connect every ``--probe-interval`` s: unloaded, then while the generator
floods from ``--flood-source`` (each mode of ``--floods``), then, as a
control, while the same flood hits a Node peer on core 0 instead.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
import urllib.request

from bench.lib import pyspy
from bench.lib.helpers import Helper
from bench.lib.paths import BENCH, OUT, PEER
from bench.lib.placement import LOAD_CORE, placed
from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import fmt, pct
from devtools.children import free_port, port_open

PROBE = BENCH / "programs" / "probe.py"
SIDE_OUT = OUT / "side_loads"
POOL = 5000  # flood sessions 0..POOL-1; probe sessions POOL..POOL+199
PROBE_SESSIONS = 200
WARM_UP_PROBES = 40
REFILL_S = 3.0  # the flooder's buckets refill between floods


def metrics_of(admin_port: int) -> dict[str, float]:
    """The daemon's bridge_connects_total by ``outcome:reason``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for m in re.finditer(r'^bridge_connects_total\{outcome="(\w+)",reason="(\w*)"\} (\S+)$',
                         text, re.M):
        out[f"{m.group(1)}:{m.group(2)}"] = float(m.group(3))
    return out


def run(stack: Stack, args, floods: list[str]) -> dict:
    """One run: a fresh daemon, unloaded, each flood, the control."""
    stack.reset_notifications()
    server = stack.server("daemon", args.daemon_cmd, args.daemon_arg)
    try:
        start_probe(stack, server, args, WARM_UP_PROBES).finish()  # from the probe's address
        entry = {"unloaded": phase(stack, server, args, None)}
        for mode in floods:
            time.sleep(REFILL_S)
            entry[f"flood-{mode}"] = phase(stack, server, args, mode)
        if not args.no_control:
            entry["control"] = control(stack, server, args, floods[0])
        return entry
    finally:
        server.stop()


def start_probe(stack: Stack, server: Server, args, count: int) -> Helper:
    return Helper(stack.children, "probe", PROBE, [
        "--port", str(server.port), "--count", str(count),
        "--interval", str(args.probe_interval), "--first", str(POOL),
        "--pool", str(PROBE_SESSIONS)], nice=0 if args.no_nice else -10, core=args.probe_core)


def control(stack: Stack, server: Server, args, mode: str) -> dict:
    """The same flood aimed at a Node peer on core 0 while the probe measures the daemon.

    Core 0 is then busier than in the real floods (generator + peer + probe +
    redis), so a probe p99 near unloaded here shows the client side is not what
    slows the probe under a real flood.
    """
    port = free_port()
    peer = stack.children.start("peer-control", placed([
        "node", str(PEER / "server.js"), "--port", str(port),
        "--redis-url", f"redis://127.0.0.1:{stack.redis_port}/0"], LOAD_CORE))
    try:
        peer.wait_for(lambda: port_open(port), 20, "control peer listening")
        target = argparse.Namespace(url=f"http://127.0.0.1:{port}", pid=peer.pid)
        return phase(stack, server, args, mode, target=target)
    finally:
        stack.children.stop(peer)


class Flood:
    """The generator's connect_loop in a thread, from the flood's source address."""

    def __init__(self, stack: Stack, url: str, args, mode: str):
        self.result: dict = {}
        self.error, self.ended = None, 0.0
        seconds = args.probes * args.probe_interval + 6.0
        command = {"url": url, "transport": "websocket", "concurrency": args.concurrency,
                   "duration": seconds, "mode": mode, "sessions": POOL,
                   "source": args.flood_source}
        self.thread = threading.Thread(target=self._go, args=(stack, command), daemon=True)
        self.thread.start()

    def _go(self, stack: Stack, command: dict) -> None:
        try:
            self.result = stack.gen.call("connect_loop", **command)
        except Exception as exc:  # noqa: BLE001 - reported with the figures
            self.error = repr(exc)
        self.ended = time.monotonic()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout=timeout)


def phase(stack: Stack, server: Server, args, mode: str | None, target=None) -> dict:
    """The probe's connects, unloaded (``mode`` None) or under the flood of ``mode``
    aimed at the daemon or at ``target`` (url, pid)."""
    pids = stack.pids(server) | ({"flooded_peer": target.pid} if target else {})
    before = metrics_of(server.admin)
    flood = None
    if mode is not None:
        flood = Flood(stack, target.url if target else server.url, args, mode)
        time.sleep(2.0)
    spy, path = None, SIDE_OUT / f"profile-flood-{mode}.txt"
    if mode in args.profile and target is None:
        spy = pyspy.record(stack.children, f"py-spy-flood-{mode}", server.pid,
                           args.probes * args.probe_interval, path)
    probe = start_probe(stack, server, args, args.probes)
    window = CpuWindow({**pids, "probe": probe.pid})
    result = probe.line()
    cpu = window.stop()  # before the probe is reaped
    probe.close()
    probe_ended = time.monotonic()
    if flood is not None:
        flood.join(args.probes * args.probe_interval + 120)
    pyspy.show(spy, path, f"flood-{mode}")
    out = probe_figures(result, cpu, before, metrics_of(server.admin))
    if flood is not None:
        out.update(flood_figures(flood, mode, out, probe_ended, cpu, target))
    show(out, result, cpu, mode, target)
    return out


def probe_figures(result: dict, cpu: dict, before: dict, after: dict) -> dict:
    lat = result["latencies_ms"]
    return {"probe_p50_ms": pct(lat, 50), "probe_p99_ms": pct(lat, 99),
            "probe_max_ms": max(lat) if lat else None, "probe_ok": len(lat),
            "probe_errors": result["errors"], "probe_latencies_ms": lat, **cpu,
            "metrics_delta": {k: after.get(k, 0) - before.get(k, 0)
                              for k in sorted(set(before) | set(after))}}


def flood_figures(flood: Flood, mode: str, out: dict, probe_ended: float, cpu: dict,
                  target) -> dict:
    res = flood.result
    attempts = res.get("done", 0) + sum(res.get("errors", {}).values())
    rate_limited = out["metrics_delta"].get("refused:rate_limited", 0)
    figures = {"flood": {
        "mode": mode, "error": flood.error, "attempts": attempts,
        "attempts_per_s": round(attempts / res["elapsed"], 1) if res else None,
        "ok": res.get("done"), "refusals": res.get("refusals"), "errors": res.get("errors"),
        "outlasted_probe": flood.ended > probe_ended,
        "p50_ms": pct(res.get("latencies", []), 50),
        "rate_limited_share": round(rate_limited / attempts, 3) if attempts else None},
        "rate_limited": rate_limited}
    per_s = figures["flood"]["attempts_per_s"]
    if target is None and per_s:
        figures["server_ms_per_attempt"] = round(10 * cpu["server_cpu_pct"] / per_s, 4)
    return figures


def show(out: dict, result: dict, cpu: dict, mode: str | None, target) -> None:
    label = ("control:" if target is not None else "") + (mode or "unloaded")
    log(f"  {label:16} probe p50 {fmt(out['probe_p50_ms'], '{:.2f}')} ms p99 "
        f"{fmt(out['probe_p99_ms'], '{:.2f}')} ms ({out['probe_ok']} ok, errors "
        f"{result['errors']}) | daemon CPU {cpu['server_cpu_pct']}% gen "
        f"{cpu['gen_cpu_pct']}% redis {cpu['redis_cpu_pct']}% noise {cpu['noise_cpu_pct']}%"
        + (f" | flood {out['flood']['attempts_per_s']}/s, rate_limited "
           f"{out['rate_limited']:.0f} of {out['flood']['attempts']}" if mode else ""))
