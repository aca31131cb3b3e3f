"""Connect scenarios: as many Socket.IO connects as the server admits (or refuses)
in ``duration`` seconds, ``CONCURRENCY`` connectors at a time."""

from __future__ import annotations

from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import rounded_pct

CONCURRENCY = 50
# scenario: (transport, loadgen connect_loop mode)
NAMES = {"connect-ws": ("websocket", "auth"), "connect-polling": ("polling", "auth"),
         "refused-nocookie": ("websocket", "nocookie"),
         "refused-unknown": ("websocket", "unknown")}


def warm_up(stack: Stack, server: Server, sessions: int, concurrency: int = CONCURRENCY,
            first: int = 0) -> None:
    """One second of authorized websocket connects (imports, first GETs, JIT)."""
    stack.gen.call("connect_loop", url=server.url, transport="websocket",
                   concurrency=concurrency, duration=1.0, mode="auth", sessions=sessions,
                   first=first)


def run(name: str, stack: Stack, server: Server, duration: float, sessions: int) -> dict:
    transport, mode = NAMES[name]
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("connect_loop", url=server.url, transport=transport,
                            concurrency=CONCURRENCY, duration=duration, mode=mode,
                            sessions=sessions)
    return figures(result, window.stop(), transport)


def figures(result: dict, cpu: dict, transport: str) -> dict:
    done = max(result["done"], 1)
    latencies = result["latencies"]
    upgraded = result["upgraded"] if transport == "polling" else []
    return {
        "rate": round(result["rate"], 1), "done": result["done"],
        "errors": result["errors"], "refusals": result["refusals"],
        "p50_ms": rounded_pct(latencies, 50), "p99_ms": rounded_pct(latencies, 99),
        "upgraded_p50_ms": rounded_pct(upgraded, 50),
        "server_ms_per_connect": round(1000 * cpu["server_cpu_s"] / done, 3),
        "gen_ms_per_connect": round(1000 * cpu["gen_cpu_s"] / done, 3),
        "latencies_ms": [round(v, 3) for v in latencies], **cpu}


def show(rep: int, kind: str, name: str, res: dict) -> None:
    log(f"run {rep + 1} {kind:6} {name:17} {res['rate']:7.1f}/s "
        f"p50 {res['p50_ms']} ms p99 {res['p99_ms']} ms | CPU/connect"
        f" server {res['server_ms_per_connect']:.2f} ms, generator "
        f"{res['gen_ms_per_connect']:.2f} ms | CPU% server "
        f"{res['server_cpu_pct']}, generator {res['gen_cpu_pct']}, "
        f"noise {res['noise_cpu_pct']}" + (f" | errors {res['errors']}" if res["errors"] else ""))
