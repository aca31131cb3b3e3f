#!/usr/bin/env python3
"""Presence benchmark (SPEC 11, issue 16): connect CPU with and without presence,
presence event latency under join/leave churn, Redis memory per online user.

    .venv/bin/python bench/presence.py --sockets 10000 --room 'chat:{k}' --groups 1000
    .venv/bin/python bench/presence.py --sockets 1000 --room lobby --rate 100
    .venv/bin/python bench/presence.py --room 'chat:{k}' --groups 1000 --churn-room chat:0

For each mode (``plain``: rooms only; ``presence``: ``--presence-room`` matching
the room): a private redis-server, sessions written by PHP through Predis
(``presence_seed.php``), the daemon pinned to core 1 and the load generator
(``presence_load.js``, socket.io-client) to core 0. The generator holds
``--sockets`` sockets (daemon CPU per connect measured from /proc), then, with
presence, churns ``--rate`` joins+leaves per second of other users for
``--seconds`` while socket 0 times every presence event it receives (joins
from the joining socket's connect; leaves from its close plus the leave delay).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.loadgen import Generator  # noqa: E402
from bench.lib.paths import BENCH, ROOT  # noqa: E402
from bench.lib.placement import LOAD_CORE, SERVER_CORE, placed  # noqa: E402
from bench.lib.procstat import cpu_seconds, settle  # noqa: E402
from bench.lib.stats import pct  # noqa: E402
from devtools.children import Children, free_port, wait_until  # noqa: E402

DELAY = 3.0


def percentile(values: list[float], q: float) -> float | None:
    value = pct(values, 100 * q)
    return None if value is None else round(value, 1)


def ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start_redis(children: Children, mode: str, workdir: Path):
    """A private redis-server on core 0; a redis-py client of it."""
    import redis

    port = free_port()
    children.start(f"redis-{mode}", placed(["redis-server", "--port", str(port), "--save", "",
                                            "--appendonly", "no", "--dir", str(workdir)],
                                           LOAD_CORE))
    client = redis.Redis(port=port)
    wait_until(lambda: _pong(client), 10, what="redis")
    return client, port


def seed(args, port: int, pool: int) -> None:
    """The held users' sessions in ``--room``, the churning ones' in ``--churn-room``."""
    for first, count, room in ((0, args.sockets, args.room),
                               (args.sockets, pool - args.sockets, args.churn_room or args.room)):
        subprocess.run(["php", str(BENCH / "presence_seed.php"), "127.0.0.1", str(port),
                        str(count), room, str(args.groups), str(first)], check=True,
                       capture_output=True)


def start_daemon(children: Children, args, mode: str, redis_port: int):
    """The daemon on core 1, with presence in ``presence`` mode; (child, its URL)."""
    port, admin_port = free_port(), free_port()
    extra = (["--presence-room", args.room.replace("{k}", "*"),
              "--presence-leave-delay", str(DELAY)] if mode == "presence" else [])
    daemon = children.start(f"daemon-{mode}", placed([
        str(ROOT / ".venv" / "bin" / "session-bridge"), "serve", "--port", str(port),
        "--admin-port", str(admin_port), "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
        "--rooms-key", "rooms", "--handshake-rate", "0", "--log-level", "warning", *extra],
        SERVER_CORE))
    daemon.wait_for(lambda: ready(admin_port), 20, "ready answer on /readyz")
    return daemon, f"http://127.0.0.1:{port}"


def hold(gen: Generator, client, daemon, url: str, mode: str, sockets: int) -> dict:
    """Hold ``sockets`` sockets; the daemon's CPU per connect, Redis memory."""
    memory_before = client.info("memory")["used_memory"]
    cpu_before = cpu_seconds(daemon.pid)
    held = gen.call("hold", url=url, **{"from": 0, "to": sockets})
    cpu_held = cpu_seconds(daemon.pid) - cpu_before
    settle(daemon.pid)  # the joins' fan-outs done
    cpu = cpu_seconds(daemon.pid) - cpu_before
    return {"mode": mode, "hold": held, "daemon_cpu_s": round(cpu, 2),
            "daemon_cpu_s_until_all_connected": round(cpu_held, 2),
            "cpu_ms_per_connect": round(cpu * 1000 / max(1, held["held"]), 3),
            "redis_used_memory_delta": client.info("memory")["used_memory"] - memory_before}


def churn(gen: Generator, daemon, url: str, args, pool: int) -> dict:
    """Joins and leaves of other users at ``--rate``; presence event latencies at socket 0."""
    before = cpu_seconds(daemon.pid), cpu_seconds(gen.pid), time.monotonic()
    seen = gen.call("churn", url=url, rate=args.rate, seconds=args.seconds,
                    pool=[args.sockets, pool], delay=DELAY, backlog=int(args.rate * 2))
    wall = time.monotonic() - before[2]
    out = summarize(seen)
    out["daemon_cpu_share"] = round((cpu_seconds(daemon.pid) - before[0]) / wall, 3)
    out["generator_cpu_share"] = round((cpu_seconds(gen.pid) - before[1]) / wall, 3)
    out["loadavg"] = open("/proc/loadavg").read().split()[:3]
    return out


def run_mode(args, mode: str, workdir: Path) -> dict:
    children = Children(workdir)
    try:
        client, redis_port = start_redis(children, mode, workdir)
        pool = args.sockets + int(args.rate * (args.seconds + 2)) + 10
        seed(args, redis_port, pool)
        daemon, url = start_daemon(children, args, mode, redis_port)
        gen = Generator(children, BENCH / "presence_load.js", f"gen-{mode}")
        result = hold(gen, client, daemon, url, mode, args.sockets)
        if mode == "presence":
            result["presence_key_bytes"] = key_bytes(client)
            result["online"] = sum(client.zcard(k) for k in client.scan_iter("*:presence:*"))
            result["churn"] = churn(gen, daemon, url, args, pool)
        gen.call("quit")
        return result
    finally:
        children.stop_all(timeout=10)


def _pong(client) -> bool:
    try:
        return client.ping()
    except Exception:  # noqa: BLE001 - not up yet
        return False


def key_bytes(client) -> int:
    return sum(client.memory_usage(k) or 0 for k in client.scan_iter("{*}:presence*"))


def summarize(churn: dict) -> dict:
    out = {"joins_expected": churn["expected_joins"], "joins_seen": len(churn["joins"]),
           "leaves_expected": churn["expected_leaves"], "leaves_seen": len(churn["leaves"]),
           "unseen_joins": churn["unseen_joins"][:20]}
    for kind in ("joins", "leaves"):
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            out[f"{kind}_{name}_ms"] = percentile(churn[kind], q)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--room", default="chat:{k}", help='room template; "{k}" = i %% groups')
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="joins+leaves per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--churn-room", default="",
                        help="room of the churning users (default: --room); socket 0, the "
                             "observer, is in room k=0")
    parser.add_argument("--modes", default="plain,presence")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="presence-bench-"))
    results = [run_mode(args, mode, workdir) for mode in args.modes.split(",")]
    report = {"args": vars(args), "results": results, "logs": str(workdir)}
    per_connect = {r["mode"]: r["cpu_ms_per_connect"] for r in results}
    if {"plain", "presence"} <= per_connect.keys():
        report["connect_cpu_ratio"] = round(per_connect["presence"] / per_connect["plain"], 3)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
