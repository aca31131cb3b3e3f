"""bench/out/history.md: medians over runs; history/live ratios, taken within each
run, then the median."""

from __future__ import annotations

from bench.lib.stats import median
from bench.scenarios.history_connect import AUTHS
from bench.scenarios.history_memory import STREAM

# (label, scenario key, figure, unit, counts toward a 1.2x target)
PUBLISH_ROWS = [
    ("PUBLISH->receipt one user p50", "latency", "p50_ms", "ms", False),
    ("PUBLISH->receipt one user p99", "latency", "p99_ms", "ms", True),
]
FANOUT_ROWS = [
    ("all received", "all_ms_median", "ms", True),
    ("first received", "first_ms_median", "ms", False),
    ("server CPU per event", "server_cpu_ms_per_event", "ms", False),
]
CONNECT_ROWS = [
    ("connects/s", "rate", "/s", True),
    ("connect p50", "p50_ms", "ms", False),
    ("connect p99", "p99_ms", "ms", False),
    ("server CPU per connect", "server_ms_per_connect", "ms", False),
    ("redis CPU per connect", "redis_ms_per_connect", "ms", False),
    ("events replayed per connect (daemon's metric)", "replayed_per_connect", "", False),
    ("connect -> replay received p50", "caught_up_p50_ms", "ms", False),
    ("connect -> replay received p99", "caught_up_p99_ms", "ms", False),
]
TARGET = 1.2


def figures(runs: list[dict], scenario: str, side: str, key: str) -> list:
    return [run[scenario][side][key] for run in runs
            if scenario in run and run[scenario][side].get(key) is not None]


def ratios(runs: list[dict], scenario: str, a: str, b: str, key: str) -> list[float]:
    """b/a per run (the two sides measured interleaved within each run)."""
    return [run[scenario][b][key] / run[scenario][a][key] for run in runs
            if scenario in run and run[scenario][a].get(key) and run[scenario][b].get(key)]


def table_row(runs, label, scenario, a, b, key, unit, target, invert=False) -> str | None:
    if not any(scenario in run for run in runs):
        return None
    each = ratios(runs, scenario, b, a, key) if invert else ratios(runs, scenario, a, b, key)
    ratio = median(each)
    shown = "" if ratio is None else f"**{ratio:.2f}x**" if target else f"{ratio:.2f}x"
    verdict = ("" if not target or ratio is None else
               "yes" if ratio <= TARGET else "**no**")
    fa, fb = median(figures(runs, scenario, a, key)), median(figures(runs, scenario, b, key))
    if fa is None and fb is None:
        return None
    show = lambda v: "" if v is None else f"{v:.2f} {unit}"  # noqa: E731
    noise = [median([run[scenario][side].get("noise_cpu_pct", run[scenario].get(
        "noise_cpu_pct")) for side in (a, b)]) for run in runs if scenario in run]
    return (f"| {label} | {show(fa)} | {show(fb)} | {shown} | "
            f"{' / '.join(f'{r:.2f}' for r in each)} | {median(noise):.0f} % | {verdict} |")


def report(results: dict) -> str:
    runs = results["runs"]
    v = results["versions"]
    lines = [f"# session-bridge history benchmark ({results['started']})", "",
             f"command: `{results['command']}`; runs: {len(runs)}; machine: {v['cores']} cores, "
             f"{v['cpu']}; redis {v['redis-server']}, Python {v['python']}, Node {v['node']}; "
             f"bridge at {v['bridge_commit']}"]
    if any(k == "latency" or k.startswith("fanout_") for run in runs for k in run):
        lines += ["", "| figure (median of runs) | live | history | history/live | per run | "
                  "noise | target met |", "|---|---|---|---|---|---|---|"]
    for label, scenario, key, unit, target in PUBLISH_ROWS:
        lines.append(table_row(runs, label, scenario, "live", "history", key, unit, target))
    for n in sorted({int(k.split("_")[1]) for run in runs for k in run
                     if k.startswith("fanout_")}):
        for label, key, unit, target in FANOUT_ROWS:
            lines.append(table_row(runs, f"fan-out to {n}: {label}", f"fanout_{n}", "live",
                                   "history", key, unit, target))
    for since in AUTHS[1:] if any("connect" in run for run in runs) else ():
        lines += ["", f"| figure (median of runs) | no since | {since} | ratio | per run | "
                  "noise | target met |", "|---|---|---|---|---|---|---|"]
        for label, key, unit, target in CONNECT_ROWS:
            invert = key == "rate"  # a rate: the ratio is how many times fewer with since
            lines.append(table_row(runs, label, "connect", "none", since, key, unit,
                                   target and since == "since", invert))
    lines += memory_table(runs)
    return "\n".join(line for line in lines if line is not None) + "\n"


def memory_table(runs: list[dict]) -> list[str]:
    mem = [run["memory"] for run in runs if "memory" in run]
    if not mem:
        return []
    pick = lambda key: median([m[key] for m in mem])  # noqa: E731
    return ["", f"| Redis memory, {mem[0]['events']} events of {mem[0]['message_bytes']} B "
            "(median of runs) | bytes |", "|---|---|",
            f"| `MEMORY USAGE {STREAM}` (SAMPLES 0) | {pick('memory_usage_bytes'):,.0f} |",
            f"| per event | {pick('bytes_per_event'):,.1f} |",
            f"| used_memory delta | {pick('used_memory_delta_bytes'):,.0f} |",
            f"| XLEN | {pick('xlen'):,.0f} |"]
