"""bench/run.py's plots: connect latency CDFs and memory per idle socket (matplotlib)."""

from __future__ import annotations

import statistics

from bench.lib.paths import OUT
from bench.lib.results import log
from bench.lib.servers import SERVERS
from bench.scenarios.connect import CONCURRENCY

COLORS = {"daemon": "tab:blue", "peer": "tab:orange"}
LABELS = {"daemon": "session-bridge (python-socketio/eventlet)",
          "peer": "Node peer (socket.io)"}


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("  (matplotlib not installed: no plots; pip install -r bench/requirements.txt)")
        return None
    return plt


def latency_cdf(plt, runs: list[dict]) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, scenario in zip(axes, ("connect-ws", "connect-polling"), strict=True):
        for server in SERVERS:
            values = sorted(v for run in runs for v in run.get(server, {})
                            .get(scenario, {}).get("latencies_ms", []))
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                ax.plot(values, ys, color=COLORS[server], label=LABELS[server])
        ax.set_xscale("log")
        ax.set_xlabel("connect latency (ms, log scale)")
        ax.set_ylabel("fraction of connects")
        ax.set_title(f"{scenario}: {CONCURRENCY} concurrent connectors")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="lower right", fontsize=8)
    return save(plt, fig, "connect_latency_cdf.png")


def memory_per_socket(plt, runs: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for server in SERVERS:
        per_n: dict[int, list[float]] = {}
        for run in runs:
            for lv in run.get(server, {}).get("hold", {}).get("levels", []):
                per_n.setdefault(lv["n"], []).append(lv["kib_per_socket"])
        if per_n:
            ns = sorted(per_n)
            ax.plot(ns, [statistics.median(per_n[n]) for n in ns], marker="o",
                    color=COLORS[server], label=LABELS[server])
    ax.set_xlabel("idle authenticated sockets held")
    ax.set_ylabel("KiB of server RSS per socket")
    ax.set_title("memory per idle socket: (RSS_N - RSS_baseline) / N")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=8)
    return save(plt, fig, "memory_per_socket.png")


def save(plt, fig, name: str) -> str:
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=110)
    plt.close(fig)
    return name


def draw(results: dict) -> list[str]:
    """The plots made (file names in bench/out/), none without matplotlib."""
    plt = pyplot()
    if plt is None:
        return []
    return [latency_cdf(plt, results["runs"]), memory_per_socket(plt, results["runs"])]
