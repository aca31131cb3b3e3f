#!/usr/bin/env python3
"""Presence benchmark (SPEC 11, issue 16): connect CPU with and without presence,
presence event latency under join/leave churn, Redis memory per online user.

    .venv/bin/python bench/presence.py --sockets 10000 --room lobby \
        --modes plain,presence,plain,presence
    .venv/bin/python bench/presence.py --sockets 10000 --room 'chat:{k}' --groups 1000 \
        --churn-room chat:0
    .venv/bin/python bench/presence.py --sockets 2000 --room lobby --bridge-path /tmp/old-tree
    .venv/bin/python bench/presence.py --send-cost 10000

For each mode (``plain``: rooms only; ``presence``: ``--presence-room``
matching the room; modes may repeat, for interleaved runs): a private
redis-server, sessions written by PHP through Predis (``presence_seed.php``), the
daemon pinned to core 1 (with ``--workers`` N > 1: N workers, nothing pinned)
and the load generator (``presence_load.js``, one Node process) to core 0. The
generator holds ``--sockets`` lean raw websocket clients (they connect to
Socket.IO, answer pings and drain what arrives, parsing frame headers only;
daemon CPU per connect measured from /proc), then opens the observer
(socket.io-client, in a second generator process of its own, so that its clock
does not wait for the first to read 10,000 sockets; last in the room, so last
in every fan-out), then, with presence, churns ``--rate`` joins+leaves per
second of other users (raw clients too) for ``--seconds`` while the observer
times every presence event (joins from the moment the joining socket's
Socket.IO CONNECT was written; leaves from its close plus the leave delay; one
machine-wide monotonic clock). ``--bridge-path`` runs the daemon from another
copy of the ``bridge`` package (e.g. ``git archive <commit> bridge``), for A/B
runs of the code. Prints one JSON object (and each mode's result on stderr as
it ends).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.loadgen import Generator  # noqa: E402
from bench.lib.paths import BENCH, VENV_BIN  # noqa: E402
from bench.lib.placement import LOAD_CORE, SERVER_CORE, placed  # noqa: E402
from bench.lib.procstat import cpu_seconds, cpu_seconds_of, settle  # noqa: E402
from bench.lib.stats import pct  # noqa: E402
from devtools.children import Children, free_port, wait_until  # noqa: E402

DELAY = 3.0


def percentile(values: list[float], q: float) -> float | None:
    value = pct(values, 100 * q)
    return None if value is None else round(value, 1)


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


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
    """The held users' sessions in ``--room``; the observer's (index ``--sockets``) and
    the churning ones' in ``--churn-room``."""
    for first, count, room in ((0, args.sockets, args.room),
                               (args.sockets, pool - args.sockets, args.churn_room or args.room)):
        subprocess.run(["php", str(BENCH / "presence_seed.php"), "127.0.0.1", str(port),
                        str(count), room, str(args.groups), str(first)], check=True,
                       capture_output=True)


def start_daemon(children: Children, args, mode: str, redis_port: int, workdir: Path):
    """The daemon on core 1, with presence in ``presence`` mode; (child, its URL).
    ``python -m bridge`` runs in the work directory, not the checkout (-m puts the
    cwd first on sys.path), so that ``--bridge-path`` is the code that runs."""
    port, admin_port = free_port(), free_port()
    extra = (["--presence-room", args.room.replace("{k}", "*"),
              "--presence-leave-delay", str(DELAY)] if mode == "presence" else [])
    env = {"PYTHONPATH": args.bridge_path} if args.bridge_path else None
    daemon = children.start(f"daemon-{mode}", placed([
        str(VENV_BIN / "python"), "-m", "bridge", "serve", "--port", str(port),
        "--admin-port", str(admin_port), "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
        "--rooms-key", "rooms", "--handshake-rate", "0", "--log-level", "warning",
        "--workers", str(args.workers), *extra],
        SERVER_CORE if args.workers == 1 else None), env=env, cwd=workdir)
    daemon.wait_for(lambda: ready(admin_port), 20, "ready answer on /readyz")
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=2) as r:
        daemon.pids = [daemon.pid] + [w["pid"] for w in json.load(r).get("workers", [])]
    return daemon, f"http://127.0.0.1:{port}"


def daemon_cpu(daemon) -> float:
    """CPU seconds of the daemon: its process and its workers'."""
    return cpu_seconds_of(daemon.pids)


def hold(gen: Generator, client, daemon, url: str, mode: str, args) -> dict:
    """Hold ``--sockets`` raw sockets; the daemon's CPU per connect, the generator's,
    what the raw clients received, Redis memory."""
    memory_before = client.info("memory")["used_memory"]
    load_before = loadavg()
    cpu_before, gen_before = daemon_cpu(daemon), cpu_seconds(gen.pid)
    held = gen.call("hold", url=url, concurrency=args.concurrency, drain_ms=args.drain_ms,
                    **{"from": 0, "to": args.sockets})
    cpu_held = daemon_cpu(daemon) - cpu_before
    for pid in daemon.pids:
        settle(pid)  # the joins' fan-outs done
    cpu = daemon_cpu(daemon) - cpu_before
    return {"mode": mode, "hold": held, "daemon_cpu_s": round(cpu, 2),
            "daemon_cpu_s_until_all_connected": round(cpu_held, 2),
            "cpu_ms_per_connect": round(cpu * 1000 / max(1, held["held"]), 3),
            "generator_cpu_s": round(cpu_seconds(gen.pid) - gen_before, 2),
            "loadavg_before": load_before, "loadavg_after": loadavg(),
            "received": gen.call("counters"),
            "redis_used_memory_delta": client.info("memory")["used_memory"] - memory_before}


def presence_keys(client) -> dict:
    """Users online and the bytes of the presence keys, in total and per online user."""
    online = sum(client.zcard(k) for k in client.scan_iter("*:presence:*"))
    size = key_bytes(client)
    return {"online": online, "presence_key_bytes": size,
            "presence_key_bytes_per_online_user": round(size / max(1, online), 1)}


def churn(gen: Generator, observer: Generator, daemon, url: str, args, pool: int) -> dict:
    """Joins and leaves of other users at ``--rate``; presence event latencies at the
    observer."""
    observer.call("seen")  # what the held users' joins sent: not timed
    before = daemon_cpu(daemon), cpu_seconds(gen.pid), time.monotonic()
    done = gen.call("churn", url=url, rate=args.rate, seconds=args.seconds,
                    pool=[args.sockets + 1, pool], delay=DELAY, backlog=int(args.rate * 2))
    wall = time.monotonic() - before[2]
    out = summarize(match(done, observer.call("seen")))
    out["daemon_cpu_share"] = round((daemon_cpu(daemon) - before[0]) / wall, 3)
    out["generator_cpu_share"] = round((cpu_seconds(gen.pid) - before[1]) / wall, 3)
    out["loadavg"] = loadavg()
    return out


def run_mode(args, mode: str, workdir: Path) -> dict:
    children = Children(workdir)
    try:
        client, redis_port = start_redis(children, mode, workdir)
        pool = args.sockets + int(args.rate * (args.seconds + 2)) + 10  # [sockets]: observer
        seed(args, redis_port, pool)
        daemon, url = start_daemon(children, args, mode, redis_port, workdir)
        gen = Generator(children, BENCH / "presence_load.js", f"gen-{mode}")
        observer = Generator(children, BENCH / "presence_load.js", f"observer-{mode}")
        result = hold(gen, client, daemon, url, mode, args)
        result["observer"] = observer.call("observe", url=url, index=args.sockets)
        if mode == "presence":
            result.update(presence_keys(client))
            result["churn"] = churn(gen, observer, daemon, url, args, pool)
            result["received_after_churn"] = gen.call("counters")
        gen.call("quit")
        observer.call("quit")
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
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(rounds):
        for sock in ours:
            sock.send(frame)
    after = resource.getrusage(resource.RUSAGE_SELF)
    for sock in (*peers, *ours, listener):
        sock.close()
    sends = sockets * rounds
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"sockets": sockets, "sends": sends,
            "us_per_send": round((user + system) / sends * 1e6, 2),
            "us_per_send_user": round(user / sends * 1e6, 2), "loadavg": loadavg()}


def match(done: dict, seen: list) -> dict:
    """The observer's events against the churn's joins and leaves: latencies (a leave's
    from its close plus the leave delay), duplicates, joins never seen."""
    joined_at = {int(user): at for user, at in done["joined_at"].items()}
    left_at = {int(user): at for user, at in done["left_at"].items()}
    joins, leaves, count = [], [], {}
    for at, payload in seen:
        key = ("j", payload["joined"]) if "joined" in payload else ("l", payload.get("left"))
        count[key] = count.get(key, 0) + 1
        if key[0] == "j" and key[1] in joined_at:
            joins.append(at - joined_at[key[1]])
        elif key[0] == "l" and key[1] in left_at:
            leaves.append(at - left_at[key[1]] - DELAY * 1000)
    seen_joins = {key[1] for key in count if key[0] == "j"}
    return {**done, "joins": joins, "leaves": leaves, "expected_joins": len(joined_at),
            "expected_leaves": len(left_at), "duplicates": sum(n > 1 for n in count.values()),
            "unseen_joins": sorted(set(joined_at) - seen_joins)}


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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--room", default="chat:{k}", help='room template; "{k}" = i %% groups')
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100.0, help="joins+leaves per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--churn-room", default="",
                        help="room of the churning users and the observer (default: --room)")
    parser.add_argument("--modes", default="plain,presence",
                        help="comma list, repeats allowed (plain,presence,plain,presence)")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight")
    parser.add_argument("--workers", type=int, default=1,
                        help="daemon processes (more than 1: the daemon is not pinned)")
    parser.add_argument("--drain-ms", type=int, default=0,
                        help="raw clients read at most this often (0: as data arrives, as a "
                             "browser does; more lets the kernel's buffers fill, so that the "
                             "daemon's writes pile up and coalesce by themselves)")
    parser.add_argument("--bridge-path", default="",
                        help="PYTHONPATH of the daemon: another copy of the bridge package")
    parser.add_argument("--send-cost", type=int, default=0, metavar="N",
                        help="only measure the CPU of one small send to each of N sockets")
    return parser.parse_args()


def report(args, results: list[dict], workdir: Path) -> dict:
    """The run's arguments and results; the presence/plain ratio of the medians of CPU
    per connect (over the repeats of each mode)."""
    out = {"args": vars(args), "results": results, "logs": str(workdir)}
    per_connect: dict[str, list[float]] = {}
    for r in results:
        per_connect.setdefault(r["mode"], []).append(r["cpu_ms_per_connect"])
    if {"plain", "presence"} <= per_connect.keys():
        out["connect_cpu_ratio"] = round(
            statistics.median(per_connect["presence"]) / statistics.median(per_connect["plain"]), 3)
    return out


def main() -> int:
    args = parse_args()
    if args.send_cost:
        print(json.dumps(send_cost(args.send_cost)))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="presence-bench-"))
    results = []
    for mode in args.modes.split(","):
        results.append(run_mode(args, mode, workdir))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(report(args, results, workdir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
