"""bench/out/report.md of bench/run.py: medians over runs, daemon/peer ratios."""

from __future__ import annotations

from pathlib import Path

from bench.lib.servers import SERVERS
from bench.lib.stats import median
from bench.scenarios.connect import CONCURRENCY
from bench.scenarios.connect import NAMES as CONNECT_SCENARIOS

# (label, figure key, unit, format) of each connect scenario
CONNECT_ROWS = (("connects/s", "rate", "/s", "{:.1f}"), ("p50 latency", "p50_ms", " ms", "{:.2f}"),
                ("p99 latency", "p99_ms", " ms", "{:.2f}"),
                ("server CPU per connect", "server_ms_per_connect", " ms", "{:.3f}"),
                ("server CPU %", "server_cpu_pct", " %", "{:.1f}"),
                ("generator CPU %", "gen_cpu_pct", " %", "{:.1f}"),
                ("noise CPU % (other processes)", "noise_cpu_pct", " %", "{:.1f}"))
FANOUT_ROWS = (("all received", "all_ms_median", "{:.1f}"),
               ("first received", "first_ms_median", "{:.2f}"),
               ("server CPU per event", "server_cpu_ms_per_event", "{:.1f}"),
               ("generator CPU per event", "gen_cpu_ms_per_event", "{:.1f}"))


class Table:
    """Rows of one figure's median per server and the daemon/peer ratio."""

    def __init__(self, runs: list[dict]):
        self.runs = runs
        self.lines = ["| figure (median of runs) | daemon | peer | daemon/peer |",
                      "|---|---|---|---|"]

    def median_of(self, server: str, getter):
        values = []
        for run in self.runs:
            try:
                values.append(getter(run[server]))
            except (KeyError, TypeError, IndexError, StopIteration):
                pass
        return median(values)

    def row(self, label: str, getter, unit: str = "", fmt: str = "{:.1f}") -> None:
        d, p = self.median_of("daemon", getter), self.median_of("peer", getter)
        ratio = "" if not d or not p else f"{d / p:.2f}x"
        show = lambda v: "" if v is None else fmt.format(v) + unit  # noqa: E731
        self.lines.append(f"| {label} | {show(d)} | {show(p)} | {ratio} |")


def connect_rows(table: Table) -> None:
    for name in CONNECT_SCENARIOS:
        for label, key, unit, fmt in CONNECT_ROWS:
            table.row(f"{name}: {label}", lambda r, n=name, k=key: r[n][k], unit, fmt)
    for name in ("connect-polling", "connect-polling-c"):
        table.row(f"{name}: p50 until upgraded",
                  lambda r, n=name: r[n]["upgraded_p50_ms"], " ms", "{:.2f}")


def memory_rows(table: Table) -> None:
    levels = sorted({lv["n"] for run in table.runs for s in SERVERS
                     for lv in run.get(s, {}).get("hold", {}).get("levels", [])})
    table.row("RSS baseline", lambda r: r["hold"]["rss_baseline_kib"] / 1024, " MiB")
    for n in levels:
        pick = lambda r, n=n: next(lv for lv in r["hold"]["levels"] if lv["n"] == n)  # noqa: E731
        table.row(f"RSS with {n} idle sockets", lambda r, p=pick: p(r)["rss_kib"] / 1024,
                  " MiB")
        table.row(f"memory per idle socket at {n}", lambda r, p=pick: p(r)["kib_per_socket"],
                  " KiB")


def fanout_rows(table: Table) -> None:
    keys = {k for run in table.runs for s in SERVERS
            for k in run.get(s, {}).get("hold", {}) if k.startswith("fanout_")}
    for key in sorted(keys, key=lambda k: int(k.split("_")[1])):
        for label, figure, fmt in FANOUT_ROWS:
            table.row(f"fan-out to {key.split('_')[1]}: {label}",
                      lambda r, k=key, f=figure: r["hold"][k][f], " ms", fmt)


def held_rows(table: Table, sizes: dict) -> None:
    close, large = sizes["close"], sizes["large"]
    table.row(f"closing {close} of {large} sockets at once: server busy for",
              lambda r: r["hold"]["mass_disconnect"]["busy_s"], " s", "{:.2f}")
    table.row(f"closing {close} of {large} sockets at once: server CPU",
              lambda r: r["hold"]["mass_disconnect"]["cpu_s"], " s", "{:.2f}")
    for label, key in (("PUBLISH->receipt one user", "latency"), ("DEL->disconnect", "logout")):
        for q in ("p50", "p99"):
            table.row(f"{label} {q}", lambda r, k=key, q=q: r["hold"][k][f"{q}_ms"], " ms",
                      "{:.2f}")


def probe_lines(probe: dict | None) -> list[str]:
    if not probe:
        return []
    return [f"WebSocket extensions offered by the generator: `{probe.get('offered')}`; "
            "negotiated: " + ", ".join(f"{k} `{v or 'none'}`" for k, v in
                                       probe.get("negotiated", {}).items()), ""]


def profile_lines(prof: dict | None) -> list[str]:
    if not prof:
        return []
    lines = [f"## Daemon profile (py-spy, connect-ws, {prof['samples']} samples, "
             f"{prof['idle_pct']}% idle in epoll)", "", "| self % | function |", "|---|---|"]
    lines += [f"| {share} | `{frame}` |" for frame, share in prof["self"]]
    lines += ["", "| inclusive % | function |", "|---|---|"]
    return lines + [f"| {share} | `{frame}` |" for frame, share in prof["inclusive"]]


def write(results: dict, path: Path) -> None:
    table = Table(results["runs"])
    connect_rows(table)
    memory_rows(table)
    fanout_rows(table)
    held_rows(table, results["sizes"])
    lines = [f"# session-bridge benchmark report ({results['started']})", "",
             f"runs per scenario: {results['runs_per_scenario']}; "
             f"concurrency {CONCURRENCY}; command: `{results['command']}`", "",
             *table.lines, "",
             "Ratios are daemon/peer: above 1 means the daemon's figure is larger "
             "(better for rates, worse for latency, CPU and memory).", "",
             *probe_lines(results.get("probe")), *profile_lines(results.get("profile"))]
    path.write_text("\n".join(lines) + "\n")
