#!/usr/bin/env python3
"""Presence benchmark (SPEC 11, issue 16): connect CPU with and without presence,
presence event latency under join/leave churn, Redis memory per online user.

    .venv/bin/python bench/presence.py --sockets 10000 --room lobby \
        --modes plain,presence,plain,presence
    .venv/bin/python bench/presence.py --sockets 10000 --room 'chat:{k}' --groups 1000 \
        --churn-room chat:0
    .venv/bin/python bench/presence.py --sockets 2000 --room lobby --bridge-path /tmp/old-tree

For each mode (``plain``: rooms only; ``presence``: ``--presence-room`` matching
the room; modes may repeat, for interleaved runs): a private redis-server,
sessions written by PHP through Predis (``presence_seed.php``), the daemon
pinned to core 1 and the load generator (``presence_load.js``, one Node
process) to core 0. The generator holds ``--sockets`` lean raw websocket
clients (they connect to Socket.IO, answer pings and drain what arrives,
parsing frame headers only; daemon CPU per connect measured from /proc), then opens the
observer (socket.io-client; last in the room, so last in every fan-out), then,
with presence, churns ``--rate`` joins+leaves per second of other users (raw
clients too) for ``--seconds`` while the observer times every presence event
(joins from the joining socket's CONNECT reply; leaves from its close plus the
leave delay). ``--bridge-path`` runs the daemon from another copy of the
``bridge`` package (e.g. ``git archive <commit> bridge``), for A/B runs of the
code. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.harness import free_port, wait_until  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DELAY = 3.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start(argv, log: Path, core: int | None, **kwargs) -> subprocess.Popen:
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(core), *argv]
    return subprocess.Popen(argv, stderr=open(log, "ab"), start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def ask(gen: subprocess.Popen, **cmd) -> dict:
    gen.stdin.write(json.dumps(cmd) + "\n")
    gen.stdin.flush()
    answer = json.loads(gen.stdout.readline())
    if not answer["ok"]:
        raise RuntimeError(answer["error"])
    return answer["result"]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def run_mode(args, mode: str, workdir: Path) -> dict:
    import redis

    procs = []
    try:
        port = free_port()
        procs.append(start(["redis-server", "--port", str(port), "--save", "", "--appendonly",
                            "no", "--dir", str(workdir)], workdir / f"redis-{mode}.log", 0,
                           stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port)
        wait_until(lambda: _pong(client), 10, what="redis")
        pool = args.sockets + int(args.rate * (args.seconds + 2)) + 10  # [sockets]: observer
        for first, count, room in ((0, args.sockets, args.room),
                                   (args.sockets, pool - args.sockets,
                                    args.churn_room or args.room)):
            subprocess.run(["php", str(BENCH / "presence_seed.php"), "127.0.0.1", str(port),
                            str(count), room, str(args.groups), str(first)], check=True,
                           capture_output=True)
        daemon_port, admin_port = free_port(), free_port()
        extra = (["--presence-room", args.room.replace("{k}", "*"),
                  "--presence-leave-delay", str(DELAY)] if mode == "presence" else [])
        env = dict(os.environ, PYTHONPATH=args.bridge_path) if args.bridge_path else None
        daemon = start([str(ROOT / ".venv" / "bin" / "python"), "-m", "bridge", "serve", "--port",
                        str(daemon_port), "--admin-port", str(admin_port), "--redis-url",
                        f"redis://127.0.0.1:{port}/0", "--rooms-key", "rooms",
                        "--handshake-rate", "0", "--log-level", "warning", *extra],
                       workdir / f"daemon-{mode}.log", 1, stdout=subprocess.DEVNULL, env=env,
                       cwd=workdir)  # not the checkout: -m puts the cwd first on sys.path
        procs.append(daemon)
        wait_until(lambda: ready(admin_port), 20, what="daemon ready")
        gen = start(["node", str(BENCH / "presence_load.js")], workdir / f"gen-{mode}.log", 0,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=BENCH)
        procs.append(gen)
        url = f"http://127.0.0.1:{daemon_port}"
        memory_before = client.info("memory")["used_memory"]
        loadavg = open("/proc/loadavg").read().split()[:3]
        cpu_before, gen_before = cpu_seconds(daemon.pid), cpu_seconds(gen.pid)
        held = ask(gen, cmd="hold", url=url, concurrency=args.concurrency, drain_ms=args.drain_ms,
                   **{"from": 0, "to": args.sockets})
        cpu_held = cpu_seconds(daemon.pid) - cpu_before
        settle(daemon.pid)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        result = {"mode": mode, "hold": held, "daemon_cpu_s": round(cpu, 2),
                  "daemon_cpu_s_until_all_connected": round(cpu_held, 2),
                  "cpu_ms_per_connect": round(cpu * 1000 / max(1, held["held"]), 3),
                  "generator_cpu_s": round(cpu_seconds(gen.pid) - gen_before, 2),
                  "loadavg_before": loadavg,
                  "loadavg_after": open("/proc/loadavg").read().split()[:3],
                  "received": ask(gen, cmd="counters"),
                  "redis_used_memory_delta": client.info("memory")["used_memory"]
                  - memory_before}
        result["observer"] = ask(gen, cmd="observe", url=url, index=args.sockets)
        if mode == "presence":
            online = sum(client.zcard(k) for k in client.scan_iter("*:presence:*"))
            result["online"] = online
            result["presence_key_bytes"] = key_bytes(client)
            result["presence_key_bytes_per_online_user"] = round(
                result["presence_key_bytes"] / max(1, online), 1)
            before = cpu_seconds(daemon.pid), cpu_seconds(gen.pid), time.monotonic()
            churn = ask(gen, cmd="churn", url=url, rate=args.rate, seconds=args.seconds,
                        pool=[args.sockets + 1, pool], delay=DELAY, backlog=int(args.rate * 2))
            wall = time.monotonic() - before[2]
            result["churn"] = summarize(churn)
            result["churn"]["daemon_cpu_share"] = round(
                (cpu_seconds(daemon.pid) - before[0]) / wall, 3)
            result["churn"]["generator_cpu_share"] = round(
                (cpu_seconds(gen.pid) - before[1]) / wall, 3)
            result["churn"]["loadavg"] = open("/proc/loadavg").read().split()[:3]
            result["received_after_churn"] = ask(gen, cmd="counters")
        ask(gen, cmd="quit")
        return result
    finally:
        for proc in reversed(procs):
            stop(proc)


def _pong(client) -> bool:
    try:
        return client.ping()
    except Exception:  # noqa: BLE001 - not up yet
        return False


def settle(pid: int, quiet: float = 1.0, idle_share: float = 0.25, limit: float = 120.0) -> None:
    """Wait until the daemon uses under ``idle_share`` of a core (the joins' fan-outs done)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < idle_share * quiet:
            return
        last = now


def key_bytes(client) -> int:
    return sum(client.memory_usage(k) or 0 for k in client.scan_iter("{*}:presence*"))


def send_cost(sockets: int, rounds: int = 50) -> dict:
    """CPU per ``send`` of one presence-sized frame to each of ``sockets`` loopback TCP
    sockets, in this process (what a delivery pass pays per socket, kernel included;
    the peers are not read, so no wake-up is counted)."""
    import resource
    import socket

    listener = socket.create_server(("127.0.0.1", 0), backlog=sockets)
    peers, ours = [], []
    for _ in range(sockets):
        peers.append(socket.create_connection(listener.getsockname()))
        ours.append(listener.accept()[0])
    frame = b"\x81\x2f" + b'42["presence",{"room":"lobby","joined":100123}]'
    usage = lambda: resource.getrusage(resource.RUSAGE_SELF)  # noqa: E731
    before = usage()
    for _ in range(rounds):
        for sock in ours:
            sock.send(frame)
    after = usage()
    for sock in (*peers, *ours, listener):
        sock.close()
    sends = sockets * rounds
    return {"sockets": sockets, "sends": sends,
            "us_per_send": round((after.ru_utime + after.ru_stime - before.ru_utime
                                  - before.ru_stime) / sends * 1e6, 2),
            "us_per_send_user": round((after.ru_utime - before.ru_utime) / sends * 1e6, 2),
            "loadavg": open("/proc/loadavg").read().split()[:3]}


def summarize(churn: dict) -> dict:
    out = {"joins_expected": churn["expected_joins"], "joins_seen": len(churn["joins"]),
           "leaves_expected": churn["expected_leaves"], "leaves_seen": len(churn["leaves"]),
           "duplicates": churn["duplicates"], "failures": churn["failures"],
           "generator_late_ms": round(churn["generator_late_ms"], 1),
           "churn_seconds": round(churn["churn_seconds"], 2),
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
    parser.add_argument("--modes", default="plain,presence",
                        help="comma list, repeats allowed (plain,presence,plain,presence)")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight")
    parser.add_argument("--drain-ms", type=int, default=0,
                        help="raw clients read at most this often (0: as data arrives, as a "
                             "browser does; more lets the kernel's buffers fill, so that the "
                             "daemon's writes pile up and coalesce by themselves)")
    parser.add_argument("--bridge-path", default="",
                        help="PYTHONPATH of the daemon: another copy of the bridge package")
    parser.add_argument("--send-cost", type=int, default=0, metavar="N",
                        help="only measure the CPU of one small send to each of N sockets")
    args = parser.parse_args()
    if args.send_cost:
        print(json.dumps(send_cost(args.send_cost)))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="presence-bench-"))
    results = []
    for mode in args.modes.split(","):
        results.append(run_mode(args, mode, workdir))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {"args": vars(args), "results": results, "logs": str(workdir)}
    per_connect: dict[str, list[float]] = {}
    for r in results:
        per_connect.setdefault(r["mode"], []).append(r["cpu_ms_per_connect"])
    if {"plain", "presence"} <= per_connect.keys():
        report["connect_cpu_ratio"] = round(
            statistics.median(per_connect["presence"]) / statistics.median(per_connect["plain"]), 3)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
