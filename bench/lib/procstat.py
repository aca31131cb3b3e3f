"""CPU time and memory of processes, from /proc."""

from __future__ import annotations

import os
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_seconds_of(pids) -> float:
    """User + system CPU of several processes together; one already gone counts 0."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class CpuWindow:
    """CPU used by the given processes (and by everything else) over a window."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.busy = machine_busy_seconds()
        self.t0 = time.monotonic()

    def stop(self) -> dict:
        elapsed = time.monotonic() - self.t0
        used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        others = machine_busy_seconds() - self.busy - sum(used.values())
        report = {"wall_s": round(elapsed, 3)}
        for name, seconds in used.items():
            report[f"{name}_cpu_s"] = round(seconds, 3)
            report[f"{name}_cpu_pct"] = round(100 * seconds / elapsed, 1)
        report["noise_cpu_pct"] = round(100 * max(others, 0) / elapsed, 1)
        return report


def wait_idle(pid: int, cpu0: float, t0: float, closed: int, limit: float = 90.0) -> dict:
    """Wait until ``pid`` uses under 5% CPU over 0.5 s; how long that took since ``t0``
    and the CPU used since ``cpu0``."""
    busy_until = time.monotonic()
    while time.monotonic() - t0 < limit:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            break
        busy_until = time.monotonic()
    return {"closed": closed, "busy_s": round(busy_until - t0, 2),
            "cpu_s": round(cpu_seconds(pid) - cpu0, 2)}


def settle(pid: int, quiet: float = 1.0, idle_share: float = 0.25, limit: float = 120.0) -> None:
    """Wait until ``pid`` uses under ``idle_share`` of a core over ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < idle_share * quiet:
            return
        last = now
