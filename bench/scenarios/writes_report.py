"""The markdown tables of side load A (scenarios/writes.py), medians over runs."""

from __future__ import annotations

from bench.lib.stats import fmt, kb, median

HEADER = ["| server | phase | writes/s achieved | server CPU % | server CPU per write | "
          "over idle, per write | redis CPU % | redis CPU per write | generator CPU % | "
          "writer CPU % | noise CPU % | server received from redis | "
          "server busy after the writer stopped |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]


def phase_rows(runs: list[dict], s: str) -> list[str]:
    def get(phase, key):
        return median([r[s]["phases"][phase].get(key) for r in runs if s in r])

    names = list(next(r[s] for r in runs if s in r)["phases"])
    idle_pct = get("idle", "server_cpu_pct") if "idle" in names else None
    lines = []
    for phase in names:
        rate, pct_ = get(phase, "writes_per_s"), get(phase, "server_cpu_pct")
        over = (None if not rate or pct_ is None or idle_pct is None
                else 1e4 * (pct_ - idle_pct) / rate)  # % of a core -> us per write
        lines.append(
            f"| {s} | {phase} | {fmt(rate, '{:,.0f}')} | {fmt(pct_)} | "
            f"{fmt(get(phase, 'server_us_per_write'), '{:.2f} us')} | "
            f"{fmt(over, '{:.2f} us')} | {fmt(get(phase, 'redis_cpu_pct'))} | "
            f"{fmt(get(phase, 'redis_us_per_write'), '{:.2f} us')} | "
            f"{fmt(get(phase, 'gen_cpu_pct'))} | {fmt(get(phase, 'writer_cpu_pct'))} | "
            f"{fmt(get(phase, 'noise_cpu_pct'))} | "
            f"{fmt(kb(get(phase, 'server_from_redis_bytes_per_s')), '{:,.1f} KB/s')} | "
            f"{fmt(get(phase, 'busy_after_s'), '{} s')} |")
    return lines


def rewrite_cost(runs: list[dict], s: str) -> str:
    per = []
    for r in runs:
        ph = r.get(s, {}).get("phases", {})
        if "rewrites" in ph and "unrelated" in ph:
            extra = ph["rewrites"]["server_cpu_pct"] - ph["unrelated"]["server_cpu_pct"]
            per.append(1e4 * extra / ph["rewrites"]["rewrites_per_s"])
    return (f"- {s}: server CPU per held-session rewrite, over `unrelated` at the same "
            f"write rate: {fmt(median(per), '{:.0f} us')} (runs: "
            + ", ".join(fmt(v, "{:.0f}") for v in per) + ")")


def run_line(i: int, s: str, x: dict) -> str:
    rw = x["phases"].get("rewrites", {})
    return (f"- run {i + 1} {s}: held {x['held']} (after {x['held_after']}, "
            f"disconnects {x['disconnects']}), redis pubsub_channels "
            f"{x['redis_pubsub_channels']}, notify-keyspace-events "
            f"`{x['notify_keyspace_events']}`, RSS {x['rss_mib']} MiB; server CPU % "
            + " / ".join(f"{v['server_cpu_pct']}" for v in x["phases"].values())
            + f"; rewrites/s {rw.get('rewrites_per_s')}")


def report(results: dict) -> str:
    runs = results["runs"]
    servers = [s for s in ("daemon", "peer") if any(s in r for r in runs)]
    lines = [f"### A. {results['held']:,} idle sockets, {results['rate']:,.0f} writes/s "
             f"(medians of {len(runs)} runs, {results['window_s']:g} s windows)", "",
             f"`{results['command']}`", "", *HEADER]
    for s in servers:
        lines += phase_rows(runs, s)
    lines.append("")
    lines += [rewrite_cost(runs, s) for s in servers]
    lines += [run_line(i, s, r[s]) for s in servers for i, r in enumerate(runs) if s in r]
    return "\n".join(lines)
