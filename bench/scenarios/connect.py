"""Connect scenarios: as many Socket.IO connects as the server admits (or refuses)
in ``duration`` seconds, ``CONCURRENCY`` connectors at a time.

``connect-ws`` and ``connect-polling`` connect with socket.io-client (the Node
generator, as a new user would measure); ``connect-ws-c`` and
``connect-polling-c`` do the same exchanges with the C generator
(bench/cgen/connects.c), which needs a tenth of the Node generator's CPU, so
that the figure is the server's capacity and not the generator's."""

from __future__ import annotations

from bench.lib import cgen
from bench.lib.procstat import CpuWindow
from bench.lib.results import log
from bench.lib.servers import Server
from bench.lib.stack import Stack
from bench.lib.stats import rounded_pct

CONCURRENCY = 50
# scenario: (transport, loadgen connect_loop mode)
NAMES = {"connect-ws": ("websocket", "auth"), "connect-polling": ("polling", "auth"),
         "refused-nocookie": ("websocket", "nocookie"),
         "refused-unknown": ("websocket", "unknown"),
         "connect-ws-c": ("websocket", "auth"), "connect-polling-c": ("polling", "auth")}
C_GENERATOR = ("connect-ws-c", "connect-polling-c")


def warm_up(stack: Stack, server: Server, sessions: int, concurrency: int = CONCURRENCY,
            first: int = 0) -> None:
    """One second of authorized websocket connects (imports, first GETs, JIT)."""
    stack.gen.call("connect_loop", url=server.url, transport="websocket",
                   concurrency=concurrency, duration=1.0, mode="auth", sessions=sessions,
                   first=first)


def run(name: str, stack: Stack, server: Server, duration: float, sessions: int) -> dict:
    transport, mode = NAMES[name]
    if name in C_GENERATOR:
        pids = {k: v for k, v in stack.pids(server).items() if k != "gen"}
        window = CpuWindow(pids)
        result = cgen.connect_loop(server.url, transport, CONCURRENCY, duration, sessions)
        cpu = window.stop()
        cpu["gen_cpu_s"] = round(result["gen_cpu_s"], 3)
        cpu["gen_cpu_pct"] = round(100 * result["gen_cpu_s"] / cpu["wall_s"], 1)
        # the window's "others" counted the generator: take it out of the noise
        cpu["noise_cpu_pct"] = round(max(0.0, cpu["noise_cpu_pct"] - cpu["gen_cpu_pct"]), 1)
        return figures(result, cpu, transport)
    window = CpuWindow(stack.pids(server))
    result = stack.gen.call("connect_loop", url=server.url, transport=transport,
                            concurrency=CONCURRENCY, duration=duration, mode=mode,
                            sessions=sessions)
    return figures(result, window.stop(), transport)


def figures(result: dict, cpu: dict, transport: str) -> dict:
    done = max(result["done"], 1)
    latencies = result["latencies"]
    upgraded = result["upgraded"] if transport == "polling" else []
    result.setdefault("refusals", {})
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
