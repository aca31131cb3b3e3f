"""The markdown table of side load B (scenarios/flood.py), medians over runs."""

from __future__ import annotations

from bench.lib.stats import fmt, median

HEADER = ["| phase | probe p50 | probe p99 | p99 / unloaded p99 | probe failures | "
          "flood attempts/s | flood attempts | refused rate_limited (share) | "
          "flood accepted | daemon CPU % | daemon CPU per flood attempt | generator CPU % | "
          "redis CPU % | noise CPU % |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]


def phase_row(runs: list[dict], ph: str, unloaded_p99) -> str:
    def get(key):
        return median([r[ph].get(key) for r in runs])

    def fl(key):
        return median([(r[ph].get("flood") or {}).get(key) for r in runs])

    p99 = get("probe_p99_ms")
    accepted = median([r[ph]["metrics_delta"].get("accepted:", 0) - r[ph]["probe_ok"]
                       for r in runs])
    failures = median([sum(r[ph]["probe_errors"].values()) for r in runs])
    return (f"| {ph} | {fmt(get('probe_p50_ms'), '{:.2f} ms')} | {fmt(p99, '{:.2f} ms')} | "
            f"{fmt(p99 / unloaded_p99 if p99 and unloaded_p99 else None, '{:.2f}x')} | "
            f"{fmt(failures, '{:.0f}')} | {fmt(fl('attempts_per_s'), '{:,.0f}')} | "
            f"{fmt(fl('attempts'), '{:,.0f}')} | "
            f"{fmt(get('rate_limited'), '{:,.0f}')}"
            f"{fmt(fl('rate_limited_share'), ' ({:.0%})')} | {fmt(accepted, '{:,.0f}')} | "
            f"{fmt(get('server_cpu_pct'))} | {fmt(get('server_ms_per_attempt'), '{:.3f} ms')} | "
            f"{fmt(get('gen_cpu_pct'))} | "
            f"{fmt(get('redis_cpu_pct'))} | {fmt(get('noise_cpu_pct'))} |")


def run_line(i: int, r: dict) -> str:
    return f"- run {i + 1}: " + "; ".join(
        f"{ph} p50/p99 {fmt(r[ph]['probe_p50_ms'], '{:.2f}')}/"
        f"{fmt(r[ph]['probe_p99_ms'], '{:.2f}')} ms"
        + (f", flood refusals {r[ph]['flood']['refusals']}, errors "
           f"{r[ph]['flood']['errors']}, outlasted probe "
           f"{r[ph]['flood']['outlasted_probe']}" if "flood" in r[ph] else "")
        for ph in r)


def report(results: dict) -> str:
    runs = results["runs"]
    unloaded_p99 = median([r["unloaded"]["probe_p99_ms"] for r in runs])
    source = results.get("flood_source", "127.0.0.1")
    lines = [f"### B. Probe from 127.0.0.2 while {source} floods (medians of {len(runs)} "
             f"runs, {results['probes']} probes each)", "", f"`{results['command']}`", "",
             *HEADER, *(phase_row(runs, ph, unloaded_p99) for ph in runs[0]), ""]
    lines += [run_line(i, r) for i, r in enumerate(runs)]
    return "\n".join(lines)
