#!/usr/bin/env python3
"""Side loads: the daemon's cost under unrelated Redis writes, and flood isolation.

    python bench/side_loads.py writes      # A: 10,000 idle sockets, then 5,000 SET/s (~15 min)
    python bench/side_loads.py flood       # B: 127.0.0.3 floods, 127.0.0.2 connects (~5 min)
    python bench/side_loads.py writes --servers daemon --runs 1 --window 10   # quicker
    python bench/side_loads.py memory      # tracemalloc: idle-socket memory by allocation site
    python bench/side_loads.py daemon-at REV [serve flags]   # the daemon of a commit
    python bench/side_loads.py daemon-exp REV [serve flags]  # same, with measuring hooks

Add ``--daemon-cmd ".venv/bin/python bench/side_loads.py daemon-at SHA"`` to
measure a fixed commit (the work tree is what runs otherwise).

``writes`` and ``flood`` reuse ``bench/run.py`` (processes in their own groups, CPU accounting
from /proc, the Node load generator, PHP-seeded sessions) and its placement:
the server alone on core 1, redis, the generator and the helpers below on
core 0. Every process is stopped at the end, also on Ctrl-C or failure.

``writes`` (issue 5). A fresh server holds 10,000 authorized idle sockets,
one per seeded session, so the daemon has 10,000 keyspace SUBSCRIBEs. Then,
for ``--window`` seconds each (25 s: Engine.IO pings every socket every 25 s, so
each window holds exactly one round of pings), CPU of the server and of redis:

* ``idle``: no traffic but the Engine.IO pings;
* ``unrelated``: a writer (redis-py, a pipeline of 50 commands every 10 ms)
  sends 5,000 writes/s to keys the server holds no socket for: 80% SETEX of
  random 32-hex ids with a session-sized value (what Predis writes for the
  visitors of other nodes), 20% SET of ``cache:``/``rate:`` keys;
* ``unrelated+del``: the same with one write in ten a DEL of an id written
  earlier (logouts elsewhere): the Node peer receives every ``del`` of the
  database, the daemon none;
* ``rewrites``: one write in five is a held session rewritten with its own
  content (SETEX, what PHP does at the end of every page load), the rest as
  ``unrelated``. The daemon re-reads a session on its ``set`` event: this one
  costs, per rewrite. The peer does not watch ``set`` at all.

``notify-keyspace-events`` is reset to "" before each server starts; each
server turns on the flags it needs (daemon ``Kg$xe``, peer ``Egx``).

``flood`` (issue 9). A daemon with the default limits (``--handshake-rate
50``: 50 Socket.IO handshakes/s per address, burst 100; 100 new Engine.IO
sessions/s per address). A probe process connects from 127.0.0.2 (bound
source address, websocket-client): TCP connect, Engine.IO open, ``40``,
wait for the ``40{...}`` answer, close; ``--probes`` connects, one every
``--probe-interval`` s (below the per-address limit). The probe runs
unloaded, then while the generator floods from 127.0.0.3 (``connect_loop``,
50 concurrent connectors, ``unknown`` session cookies, then authorized
ones). Reported: the probe's p50/p99 and the ratio to unloaded, the flood's
attempts and how many were refused ``rate_limited`` (the daemon's
``bridge_connects_total``), and the daemon's CPU. The probe and redis run at
``nice -10`` on core 0 so that the flood generator sharing that core does not
delay them; ``--no-nice`` turns that off.

``memory``: the daemon under tracemalloc (``daemon-exp``), snapshots before and
after holding ``--sockets`` idle sockets, the difference per socket by the
library frame nearest each allocation.

``daemon-at REV`` runs ``session-bridge`` from ``git archive REV bridge`` (in
/tmp, once per commit) instead of the work tree, whose uncommitted edits may be
half-way: ``--daemon-cmd ".venv/bin/python bench/side_loads.py daemon-at SHA"``
works here and in run.py. Give a commit id, not HEAD: HEAD is resolved at each
daemon start and moves when someone commits during a run. ``daemon-exp`` does
the same with the hooks described at ``EXP_LAUNCHER`` (tracemalloc snapshots,
a log of long garbage collections, Python's default GC thresholds).

Output: ``bench/out/side_loads/<scenario>.json`` (every run), ``memory.md``,
and the medians on stdout as markdown tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export_tree(rev: str) -> Path:
    """``git archive`` of bridge/ at ``rev`` into /tmp (once per commit)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", rev + "^{commit}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    tree = Path(f"/tmp/session-bridge-at-{sha[:12]}")
    if not (tree / "bridge" / "__init__.py").exists():
        partial = Path(f"{tree}.{os.getpid()}")
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "bridge"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        try:
            partial.rename(tree)
        except OSError:  # another launcher won the race
            subprocess.run(["rm", "-rf", str(partial)], check=True)
    return tree


def daemon_at(rev: str, argv: list[str]) -> None:
    """exec the daemon of commit ``rev``, not the work tree."""
    tree = export_tree(rev)
    # The console script's sys.path[0] is .venv/bin, so PYTHONPATH comes before the
    # editable install (whose finder is consulted after the path).
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = ROOT / ".venv" / "bin" / "session-bridge"
    os.execve(sys.executable, [sys.executable, str(script), *argv], env)


# The daemon with measuring hooks, chosen by environment variables:
#   BENCH_TRACE_DIR=dir  tracemalloc on; SIGUSR2 writes a snapshot (and the greenlet
#                        count, RSS) to dir (BENCH_TRACE_FRAMES frames, default 30)
#   BENCH_GC_DEFAULTS=1  gc.set_threshold becomes a no-op: the daemon keeps Python's
#                        default thresholds (to measure what its own setting buys)
#   BENCH_GC_THRESHOLDS=a,b,c  gc.set_threshold(a, b, c) before the daemon starts (a
#                        daemon that sets its own thresholds overrides this)
#   BENCH_GC_LOG=path    every collection of 20 ms or more appended to path as a JSON
#                        line (time, generation, seconds, objects collected)
# Run by `python -c`, so '' (the work tree) leaves sys.path first.
EXP_LAUNCHER = """
import gc, json, os, signal, sys, time
sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]
if os.environ.get('BENCH_GC_THRESHOLDS'):
    gc.set_threshold(*map(int, os.environ['BENCH_GC_THRESHOLDS'].split(',')))
if os.environ.get('BENCH_GC_DEFAULTS') == '1':
    gc.set_threshold = lambda *args: None
if os.environ.get('BENCH_GC_LOG'):
    _gc_started = [0.0]
    def _gc_log(phase, info):
        if phase == 'start':
            _gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - _gc_started[0]
        if took >= 0.02:
            with open(os.environ['BENCH_GC_LOG'], 'a') as f:
                f.write(json.dumps({'t': time.time(), 'generation': info['generation'],
                                    'seconds': round(took, 3),
                                    'collected': info['collected']}) + chr(10))
    gc.callbacks.append(_gc_log)
if os.environ.get('BENCH_TRACE_DIR'):
    import tracemalloc
    tracemalloc.start(int(os.environ.get('BENCH_TRACE_FRAMES', '30')))
    def dump(signum, frame):
        import greenlet
        gc.collect()
        snap = tracemalloc.take_snapshot()
        stamp = '%d' % (time.time() * 1000)
        base = os.path.join(os.environ['BENCH_TRACE_DIR'], 'snap-' + stamp)
        snap.dump(base + '.tmp')
        with open('/proc/self/status') as f:
            rss = [int(l.split()[1]) for l in f if l.startswith('VmRSS:')][0]
        info = {'greenlets': sum(1 for o in gc.get_objects()
                                 if isinstance(o, greenlet.greenlet)),
                'rss_kib': rss, 'traced_bytes': tracemalloc.get_traced_memory()[0]}
        with open(base + '.json', 'w') as f:
            json.dump(info, f)
        os.rename(base + '.tmp', base + '.snap')
    signal.signal(signal.SIGUSR2, dump)
from bridge.cli import main
sys.exit(main())
"""


def daemon_exp(rev: str, argv: list[str]) -> None:
    """exec the daemon of commit ``rev`` under EXP_LAUNCHER's hooks."""
    tree = export_tree(rev)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    os.execve(sys.executable, [sys.executable, "-c", EXP_LAUNCHER, *argv], env)


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "daemon-at":
    daemon_at(sys.argv[2], sys.argv[3:])  # before anything else is imported
if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "daemon-exp":
    daemon_exp(sys.argv[2], sys.argv[3:])

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

sys.path.insert(0, str(HERE))
import run  # noqa: E402  (bench/run.py: processes, CPU windows, generator, seeding)

OUT = run.OUT / "side_loads"
PY = str(run.VENV_BIN / "python") if (run.VENV_BIN / "python").exists() else sys.executable
HELD = 10_000
PHASES = ("idle", "unrelated", "unrelated+del", "rewrites")


def session_id(i: int) -> str:
    """Session i of seed_sessions.php (and loadgen.js)."""
    return hashlib.md5(f"session-bridge-bench:{i}".encode()).hexdigest()


# --- helper processes (run as `side_loads.py writer ...` / `probe ...`) ----------

def writer_main(argv: list[str]) -> int:
    """Paced writes to redis; prints one JSON line when done."""
    p = argparse.ArgumentParser(prog="side_loads.py writer")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--mix", choices=PHASES[1:], required=True)
    p.add_argument("--held", type=int, default=HELD)
    a = p.parse_args(argv)
    import redis

    r = redis.Redis(host="127.0.0.1", port=a.port)
    rng = random.Random(5)
    session_like = b"x" * 1400  # the size of a Predis session; content is irrelevant here
    small = b"y" * 200
    held_ids, held_values = [], []
    if a.mix == "rewrites":
        for start in range(0, a.held, 1000):
            ids = [session_id(i) for i in range(start, min(a.held, start + 1000))]
            pipe = r.pipeline(transaction=False)
            for sid in ids:
                pipe.get(sid)
            for sid, value in zip(ids, pipe.execute(), strict=True):
                if value is not None:
                    held_ids.append(sid)
                    held_values.append(value)
        if not held_ids:
            raise SystemExit("no held session found to rewrite")
    written: list[str] = []  # unrelated ids, oldest first, for the DELs
    kinds = {"setex_unrelated_id": 0, "set_other": 0, "del_unrelated_id": 0,
             "setex_held_session": 0}
    period = a.batch / a.rate
    print(json.dumps({"started": True, "held_ids": len(held_ids)}), flush=True)
    t0 = time.monotonic()
    deadline, tick, late, k = t0 + a.duration, t0, 0, 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        pipe = r.pipeline(transaction=False)
        for _ in range(a.batch):
            k += 1
            roll = rng.random()
            if a.mix == "rewrites" and roll < 0.2:
                j = k % len(held_ids)
                pipe.setex(held_ids[j], 3600, held_values[j])
                kinds["setex_held_session"] += 1
            elif a.mix == "unrelated+del" and roll < 0.1 and written:
                pipe.delete(written.pop(0))
                kinds["del_unrelated_id"] += 1
            elif rng.random() < 0.8:
                sid = os.urandom(16).hex()
                pipe.setex(sid, 3600, session_like)
                kinds["setex_unrelated_id"] += 1
                if a.mix == "unrelated+del":
                    written.append(sid)
            else:
                name = rng.choice(("cache:product:", "cache:page:", "rate:ip:"))
                pipe.set(f"{name}{rng.randrange(100_000)}", small)
                kinds["set_other"] += 1
        pipe.execute()
        tick += period
        pause = tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
            if pause < -0.1:
                tick = time.monotonic()  # do not burst to catch up
    elapsed = time.monotonic() - t0
    print(json.dumps({"commands": k, "seconds": round(elapsed, 3),
                      "rate": round(k / elapsed, 1), "late_batches": late, "kinds": kinds}),
          flush=True)
    return 0


def probe_main(argv: list[str]) -> int:
    """Sequential authorized connects from a bound source address; one JSON line."""
    p = argparse.ArgumentParser(prog="side_loads.py probe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--interval", type=float, default=0.04)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--pool", type=int, default=200)
    a = p.parse_args(argv)
    import websocket

    url = f"ws://127.0.0.1:{a.port}/socket.io/?EIO=4&transport=websocket"
    latencies: list[float] = []
    errors: dict[str, int] = {}
    print(json.dumps({"started": True}), flush=True)
    t0 = time.monotonic()
    next_at = t0
    for n in range(a.count):
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        next_at += a.interval
        cookie = f"PHPSESSID={session_id(a.first + n % a.pool)}"
        started = time.perf_counter()
        ws = None
        try:
            sock = socket.create_connection(("127.0.0.1", a.port), timeout=10,
                                            source_address=(a.source, 0))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ws = websocket.create_connection(url, socket=sock, cookie=cookie, timeout=10,
                                             suppress_origin=True)
            opened = ws.recv()
            if not opened.startswith("0"):
                raise RuntimeError(f"open:{opened[:20]}")
            ws.send("40")
            answer = ws.recv()
            while answer == "2":  # a ping may come first
                ws.send("3")
                answer = ws.recv()
            if not answer.startswith("40"):
                raise RuntimeError(f"answer:{answer[:60]}")
            latencies.append(1000 * (time.perf_counter() - started))
        except (OSError, RuntimeError, websocket.WebSocketException) as exc:
            key = type(exc).__name__ + ":" + str(exc)[:80]
            errors[key] = errors.get(key, 0) + 1
        finally:
            if ws is not None:
                try:
                    ws.close(timeout=1)
                except (OSError, websocket.WebSocketException):
                    pass
    print(json.dumps({"latencies_ms": [round(v, 3) for v in latencies], "errors": errors,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    return 0


class Helper:
    """A helper subprocess (writer, probe) in its own group; JSON lines on stdout."""

    def __init__(self, procs: run.Processes, name: str, argv: list[str], nice: int = 0,
                 core: int = 0):
        prefix = ["nice", "-n", str(nice)] if nice else []
        self.proc = procs.start(name, [*prefix, PY, str(Path(__file__).resolve()), *argv],
                                core=core, pipe=True)
        self.procs = procs
        self.pid = self.proc.pid
        first = self.line()
        if not first.get("started"):
            raise RuntimeError(f"{name} did not start: {first}")

    def line(self) -> dict:
        text = self.proc.stdout.readline()
        if not text:
            raise RuntimeError(f"helper died (see {OUT}/logs)")
        return json.loads(text)

    def finish(self) -> dict:
        result = self.line()
        self.close()
        return result

    def close(self) -> None:
        self.proc.wait(timeout=30)
        self.procs.stop(self.proc)


# --- shared set-up -------------------------------------------------------------------------

class Bench:
    """redis-server + the generator, as run.py starts them; stop() ends everything."""

    def __init__(self, seeded: int, nice_redis: bool = False):
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "logs").mkdir(exist_ok=True)
        self.fds = run.raise_fd_limit()
        self.procs = run.Processes(OUT / "logs")
        try:
            run.ensure_node_modules()
            self.redis_port = run.free_port()
            prefix = ["nice", "-n", "-10"] if nice_redis else []
            self.redis = self.procs.start("redis", [
                *prefix, "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--maxclients", "20000"], core=0)
            run.wait_until(lambda: self.redis.poll() is not None
                           or run._port_open(self.redis_port), 10, "redis-server")
            self.r = run.MiniRedis(self.redis_port)
            self.seeded = run.seed(self.redis_port, seeded)
            self.gen = run.Generator(self.procs)
            self.gen.call("redis", url=f"redis://127.0.0.1:{self.redis_port}/0")
        except BaseException:
            self.procs.stop_all()
            raise

    def server(self, kind: str, args) -> run.Server:
        self.r.command("CONFIG", "SET", "notify-keyspace-events", "")
        return run.Server(kind, self.procs, self.redis_port, args)

    def pids(self, server: run.Server) -> dict:
        return {"server": server.pid, "redis": self.redis.pid, "gen": self.gen.pid}

    def info(self, section: str) -> dict:
        text = self.r.command("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def stop(self) -> None:
        try:
            self.r.close()
        except OSError:
            pass
        self.procs.stop_all()


def common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--daemon-cmd", default="",
                   help="command that runs the daemon instead of .venv/bin/session-bridge "
                   "(e.g. '.venv/bin/python bench/side_loads.py daemon-at HEAD')")
    p.add_argument("--daemon-arg", action="append", default=[])


def med(values):
    return run.median([v for v in values if v is not None])


def kb(v):
    return None if v is None else v / 1000


def fmt(v, spec="{:.1f}"):
    return "" if v is None else spec.format(v)


# --- A: unrelated writes -----------------------------------------------------------------------

def repeat(bench: Bench, runs: int, one_run, results: dict, name: str) -> None:
    """``runs`` times ``one_run(bench, rep)`` into ``results["runs"]``, saved to OUT/``name``
    after each run (a long scenario that fails late keeps what it measured); stops
    ``bench`` in the end."""
    try:
        for rep in range(runs):
            results["runs"].append(one_run(bench, rep))
            (OUT / name).write_text(json.dumps(results, indent=1))
        bench.gen.call("quit")
    finally:
        bench.stop()
    (OUT / name).write_text(json.dumps(results, indent=1))


def writes_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="side_loads.py writes")
    common_args(p)
    p.add_argument("--servers", default="daemon,peer")
    p.add_argument("--window", type=float, default=25.0,
                   help="seconds measured per phase (25: one Engine.IO ping round of every "
                   "socket in each window)")
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--held", type=int, default=HELD)
    p.add_argument("--profile", action="append", default=[], metavar="PHASE",
                   help="py-spy the daemon during this phase (skews its CPU figure)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help="phases in order (a repeated phase is reported as name#2)")
    args = p.parse_args(argv)
    servers = [s for s in args.servers.split(",") if s]
    results = {"scenario": "writes", "command": " ".join(["python bench/side_loads.py writes",
                                                          *argv]),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "held": args.held,
               "rate": args.rate, "window_s": args.window, "runs": []}

    def one_run(bench: Bench, rep: int) -> dict:
        order = servers if rep % 2 == 0 else list(reversed(servers))
        return {kind: writes_run(bench, kind, args) for kind in order}

    repeat(Bench(args.held), args.runs, one_run, results, "writes.json")
    print(writes_report(results))
    return 0


def writes_run(bench: Bench, kind: str, args) -> dict:
    server = bench.server(kind, args)
    out: dict = {"phases": {}}
    try:
        lost_before = bench.gen.call("ping")["disconnects"]
        held = bench.gen.call("hold", url=server.url, first=0, n=args.held, concurrency=50)
        out["held"] = held["held"]
        out["hold_failures"] = held["failures"]
        # Let the first keyspace-subscribe checks (a GET per new session) finish.
        settle = run.wait_idle(server.pid, run.cpu_seconds(server.pid), time.monotonic(), 0)
        out["settle_s"] = settle["busy_s"]
        time.sleep(3.0)
        stats = bench.info("stats")
        out["redis_pubsub_channels"] = int(stats.get("pubsub_channels", -1))
        out["notify_keyspace_events"] = bench.r.command(
            "CONFIG", "GET", "notify-keyspace-events")[1]
        out["rss_mib"] = round(run.rss_kib(server.pid) / 1024, 1)
        seen: dict[str, int] = {}
        for phase in args.phases.split(","):
            seen[phase] = seen.get(phase, 0) + 1
            name = phase if seen[phase] == 1 else f"{phase}#{seen[phase]}"
            out["phases"][name] = writes_phase(bench, server, phase, args)
            ph = out["phases"][name]
            run.log(f"{kind:6} {name:14} server {ph['server_cpu_pct']:5.1f}% "
                    f"redis {ph['redis_cpu_pct']:5.1f}% gen {ph['gen_cpu_pct']:5.1f}% "
                    f"writer {ph.get('writer_cpu_pct', 0):5.1f}% noise {ph['noise_cpu_pct']:5.1f}%"
                    f" | writes/s {ph.get('writes_per_s', 0)} | server us/write "
                    f"{ph.get('server_us_per_write')} | busy after {ph.get('busy_after_s')} s")
        ping = bench.gen.call("ping")
        out["held_after"] = ping["held"]
        out["disconnects"] = {k: v - lost_before.get(k, 0)
                              for k, v in ping["disconnects"].items()
                              if v != lost_before.get(k, 0)}
    finally:
        bench.gen.call("release", keep=0)  # before the stop: no "transport close" counted
        server.stop()
    time.sleep(1.0)
    return out


def redis_bytes_in(pid: int, redis_port: int) -> int:
    """Bytes process ``pid`` has received on its open connections to redis (ss -ti)."""
    text = subprocess.run(["ss", "-tinpH", "state", "established",
                           f"( dport = :{redis_port} )"], capture_output=True, text=True).stdout
    total, mine = 0, False
    for line in text.splitlines():
        if not line[:1].isspace():
            mine = f"pid={pid}," in line
        elif mine and (m := re.search(r"bytes_received:(\d+)", line)):
            total += int(m.group(1))
    return total


class FromRedis:
    """Bytes the server received from redis over a window (notifications, replies)."""

    def __init__(self, pid: int, redis_port: int):
        self.pid, self.port = pid, redis_port
        self.t0, self.start = time.monotonic(), redis_bytes_in(pid, redis_port)

    def stop(self) -> dict:
        got = redis_bytes_in(self.pid, self.port) - self.start
        return {"server_from_redis_bytes_per_s": round(got / (time.monotonic() - self.t0), 1)}


def writes_phase(bench: Bench, server: run.Server, phase: str, args) -> dict:
    pids = bench.pids(server)
    spy = None
    if phase in args.profile and server.kind == "daemon":
        spy = bench.procs.start(f"py-spy-{phase}", [
            str(run.VENV_BIN / "py-spy"), "record", "--pid", str(server.pid), "--rate", "250",
            "--duration", str(int(args.window)), "--format", "raw", "--nonblocking",
            "--output", str(OUT / f"profile-{phase}.txt")], core=0)
    if phase == "idle":
        window, io = run.CpuWindow(pids), FromRedis(server.pid, bench.redis_port)
        time.sleep(args.window)
        out = {**window.stop(), **io.stop()}
        finish_profile(spy, phase)
        return out
    writer = Helper(bench.procs, f"writer-{phase}", [
        "writer", "--port", str(bench.redis_port), "--rate", str(args.rate),
        "--duration", str(args.window + 2.0), "--mix", phase, "--held", str(args.held)])
    time.sleep(1.0)
    window = run.CpuWindow({**pids, "writer": writer.pid})
    io = FromRedis(server.pid, bench.redis_port)
    time.sleep(args.window)
    io_rates = io.stop()
    cpu = window.stop()
    done = writer.finish()
    cpu0, t_end = run.cpu_seconds(server.pid), time.monotonic()
    idle = run.wait_idle(server.pid, cpu0, t_end, 0, limit=60.0)
    writes = done["rate"] * cpu["wall_s"]
    out = {**cpu, "writes_per_s": done["rate"], "writer": done,
           "server_us_per_write": round(1e6 * cpu["server_cpu_s"] / writes, 2),
           "redis_us_per_write": round(1e6 * cpu["redis_cpu_s"] / writes, 2),
           "busy_after_s": idle["busy_s"]}
    rewrites = done["kinds"]["setex_held_session"]
    if rewrites:
        out["rewrites_per_s"] = round(rewrites / done["seconds"], 1)
    out.update(io_rates)
    finish_profile(spy, phase)
    return out


def finish_profile(spy, phase: str) -> None:
    if spy is None:
        return
    spy.wait(timeout=120)
    path = OUT / f"profile-{phase}.txt"
    if path.exists():
        prof = run.summarize_profile(path)
        run.log(f"  py-spy during {phase}: {prof['samples']} samples, {prof['idle_pct']}% idle")
        for frame, share in prof["inclusive"][:40]:
            run.log(f"    {share:5.1f}% {frame}")


def writes_report(results: dict) -> str:
    runs = results["runs"]
    servers = [s for s in ("daemon", "peer") if any(s in r for r in runs)]
    lines = [f"### A. {results['held']:,} idle sockets, {results['rate']:,.0f} writes/s "
             f"(medians of {len(runs)} runs, {results['window_s']:g} s windows)", "",
             f"`{results['command']}`", "",
             "| server | phase | writes/s achieved | server CPU % | server CPU per write | "
             "over idle, per write | redis CPU % | redis CPU per write | generator CPU % | "
             "writer CPU % | noise CPU % | server received from redis | "
             "server busy after the writer stopped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in servers:
        def get(phase, key, s=s):
            return med([r[s]["phases"][phase].get(key) for r in runs if s in r])
        names = list(next(r[s] for r in runs if s in r)["phases"])
        idle_pct = get("idle", "server_cpu_pct") if "idle" in names else None
        for phase in names:
            rate = get(phase, "writes_per_s")
            pct_ = get(phase, "server_cpu_pct")
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
    lines.append("")
    for s in servers:
        per = []
        for r in runs:
            if s in r:
                ph = r[s]["phases"]
                if "rewrites" in ph and "unrelated" in ph:
                    extra = ph["rewrites"]["server_cpu_pct"] - ph["unrelated"]["server_cpu_pct"]
                    per.append(1e4 * extra / ph["rewrites"]["rewrites_per_s"])
        lines.append(f"- {s}: server CPU per held-session rewrite, over `unrelated` at the same "
                     f"write rate: {fmt(med(per), '{:.0f} us')} (runs: "
                     + ", ".join(fmt(v, "{:.0f}") for v in per) + ")")
    for s in servers:
        for i, r in enumerate(runs):
            if s in r:
                x = r[s]
                rw = x["phases"].get("rewrites", {})
                lines.append(
                    f"- run {i + 1} {s}: held {x['held']} (after {x['held_after']}, "
                    f"disconnects {x['disconnects']}), redis pubsub_channels "
                    f"{x['redis_pubsub_channels']}, notify-keyspace-events "
                    f"`{x['notify_keyspace_events']}`, RSS {x['rss_mib']} MiB; server CPU % "
                    + " / ".join(f"{v['server_cpu_pct']}" for v in x["phases"].values())
                    + f"; rewrites/s {rw.get('rewrites_per_s')}")
    return "\n".join(lines)


# --- B: flood isolation ----------------------------------------------------------------------

def metrics_of(admin_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for m in re.finditer(r'^bridge_connects_total\{outcome="(\w+)",reason="(\w*)"\} (\S+)$',
                         text, re.M):
        out[f"{m.group(1)}:{m.group(2)}"] = float(m.group(3))
    return out


def flood_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="side_loads.py flood")
    common_args(p)
    p.add_argument("--probes", type=int, default=400)
    p.add_argument("--probe-interval", type=float, default=0.04)
    p.add_argument("--floods", default="unknown,auth",
                   help="loadgen connect_loop modes of the flood (unknown, nocookie, auth)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--flood-source", default="127.0.0.3",
                   help="the flood's source address (127.0.0.1 counts as a local proxy, "
                        "limited per X-Forwarded-For instead of at accept)")
    p.add_argument("--no-nice", action="store_true")
    p.add_argument("--probe-core", type=int, default=0, choices=(0, 1),
                   help="0: beside the flood generator and redis (default); 1: beside the "
                        "daemon, so the flooder's own CPU does not slow the probe")
    p.add_argument("--profile", action="append", default=[], metavar="MODE",
                   help="py-spy the daemon during the flood of this mode (skews its CPU)")
    p.add_argument("--no-control", action="store_true",
                   help="skip the control phase (the flood aimed at a Node peer on core 0)")
    args = p.parse_args(argv)
    args.daemon_arg = ["--handshake-rate", "50", *args.daemon_arg]  # the default, explicitly
    floods = [f for f in args.floods.split(",") if f]
    pool = 5000  # flood sessions 0..pool-1; probe sessions pool..pool+199
    results = {"scenario": "flood", "command": " ".join(["python bench/side_loads.py flood",
                                                         *argv]),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "probes": args.probes,
               "probe_interval_s": args.probe_interval, "nice": not args.no_nice,
               "probe_core": args.probe_core,
               "concurrency": args.concurrency, "flood_source": args.flood_source, "runs": []}

    def one_run(bench: Bench, rep: int) -> dict:
        server = bench.server("daemon", args)
        try:
            # Warm up (imports, first GETs) from the probe's own address, slowly.
            flood_probe(bench, server, args, pool, count=40)
            entry = {"unloaded": flood_phase(bench, server, args, pool, None)}
            for mode in floods:
                time.sleep(3.0)  # let the flooder's buckets refill
                entry[f"flood-{mode}"] = flood_phase(bench, server, args, pool, mode)
            if not args.no_control:
                entry["control"] = control_phase(bench, server, args, pool, floods[0])
            return entry
        finally:
            server.stop()

    repeat(Bench(pool + 200, nice_redis=not args.no_nice), args.runs, one_run, results,
           "flood.json")
    print(flood_report(results))
    return 0


def flood_probe(bench: Bench, server: run.Server, args, pool: int, count: int) -> Helper:
    probe = Helper(bench.procs, "probe", [
        "probe", "--port", str(server.port), "--count", str(count),
        "--interval", str(args.probe_interval), "--first", str(pool), "--pool", "200"],
        nice=0 if args.no_nice else -10, core=args.probe_core)
    if count <= 40:
        probe.finish()
    return probe


def control_phase(bench: Bench, server: run.Server, args, pool: int, mode: str) -> dict:
    """The same flood aimed at a Node peer on core 0 while the probe measures the daemon.

    Core 0 is then busier than in the real floods (generator + peer + probe +
    redis), so a probe p99 near unloaded here shows the client side is not what
    slows the probe under a real flood.
    """
    peer_port = run.free_port()
    peer = bench.procs.start("peer-control", [
        "node", str(run.PEER / "server.js"), "--port", str(peer_port),
        "--redis-url", f"redis://127.0.0.1:{bench.redis_port}/0"], core=0)
    try:
        run.wait_until(lambda: peer.poll() is not None or run._port_open(peer_port), 20,
                       "control peer")
        target = argparse.Namespace(url=f"http://127.0.0.1:{peer_port}", pid=peer.pid)
        return flood_phase(bench, server, args, pool, mode, target=target)
    finally:
        bench.procs.stop(peer)


def flood_phase(bench: Bench, server: run.Server, args, pool: int, mode: str | None,
                target=None) -> dict:
    pids = bench.pids(server)
    if target is not None:
        pids["flooded_peer"] = target.pid
    flood_url = target.url if target is not None else server.url
    before = metrics_of(server.admin)
    flood: dict = {}
    thread = None
    if mode is not None:
        seconds = args.probes * args.probe_interval + 6.0

        def go():
            try:
                flood["result"] = bench.gen.call(
                    "connect_loop", url=flood_url, transport="websocket",
                    concurrency=args.concurrency, duration=seconds, mode=mode, sessions=pool,
                    source=args.flood_source)
            except Exception as exc:  # noqa: BLE001 - reported below
                flood["error"] = repr(exc)
            flood["ended"] = time.monotonic()

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        time.sleep(2.0)
    spy = None
    if mode in getattr(args, "profile", []) and target is None:
        spy = bench.procs.start(f"py-spy-flood-{mode}", [
            str(run.VENV_BIN / "py-spy"), "record", "--pid", str(server.pid), "--rate", "250",
            "--duration", str(int(args.probes * args.probe_interval)), "--format", "raw",
            "--nonblocking", "--output", str(OUT / f"profile-flood-{mode}.txt")], core=0)
    probe = flood_probe(bench, server, args, pool, args.probes)
    window = run.CpuWindow({**pids, "probe": probe.pid})
    result = probe.line()
    cpu = window.stop()  # before the probe is reaped
    probe.close()
    probe_ended = time.monotonic()
    if thread is not None:
        thread.join(timeout=args.probes * args.probe_interval + 120)
    finish_profile(spy, f"flood-{mode}")
    after = metrics_of(server.admin)
    lat = result["latencies_ms"]
    out = {"probe_p50_ms": run.pct(lat, 50), "probe_p99_ms": run.pct(lat, 99),
           "probe_max_ms": max(lat) if lat else None, "probe_ok": len(lat),
           "probe_errors": result["errors"], "probe_latencies_ms": lat, **cpu,
           "metrics_delta": {k: after.get(k, 0) - before.get(k, 0)
                             for k in sorted(set(before) | set(after))}}
    if mode is not None:
        res = flood.get("result") or {}
        attempts = res.get("done", 0) + sum(res.get("errors", {}).values())
        out["flood"] = {
            "mode": mode, "error": flood.get("error"), "attempts": attempts,
            "attempts_per_s": round(attempts / res["elapsed"], 1) if res else None,
            "ok": res.get("done"), "refusals": res.get("refusals"),
            "errors": res.get("errors"),
            "outlasted_probe": flood.get("ended", 0) > probe_ended,
            "p50_ms": run.pct(res.get("latencies", []), 50)}
        delta = out["metrics_delta"]
        out["rate_limited"] = delta.get("refused:rate_limited", 0)
        out["flood"]["rate_limited_share"] = (round(out["rate_limited"] / attempts, 3)
                                              if attempts else None)
        if target is None and out["flood"]["attempts_per_s"]:
            out["server_ms_per_attempt"] = round(
                10 * cpu["server_cpu_pct"] / out["flood"]["attempts_per_s"], 4)
    label = ("control:" if target is not None else "") + (mode or "unloaded")
    run.log(f"  {label:16} probe p50 {fmt(out['probe_p50_ms'], '{:.2f}')} ms p99 "
            f"{fmt(out['probe_p99_ms'], '{:.2f}')} ms ({len(lat)} ok, errors "
            f"{result['errors']}) | daemon CPU {cpu['server_cpu_pct']}% gen "
            f"{cpu['gen_cpu_pct']}% redis {cpu['redis_cpu_pct']}% noise {cpu['noise_cpu_pct']}%"
            + (f" | flood {out['flood']['attempts_per_s']}/s, rate_limited "
               f"{out['rate_limited']:.0f} of {out['flood']['attempts']}" if mode else ""))
    return out


def flood_report(results: dict) -> str:
    runs = results["runs"]
    phases = list(runs[0])
    unloaded = {q: med([r["unloaded"][f"probe_{q}_ms"] for r in runs]) for q in ("p50", "p99")}
    source = results.get("flood_source", "127.0.0.1")
    lines = [f"### B. Probe from 127.0.0.2 while {source} floods (medians of {len(runs)} "
             f"runs, {results['probes']} probes each)", "", f"`{results['command']}`", "",
             "| phase | probe p50 | probe p99 | p99 / unloaded p99 | probe failures | "
             "flood attempts/s | flood attempts | refused rate_limited (share) | "
             "flood accepted | daemon CPU % | daemon CPU per flood attempt | generator CPU % | "
             "redis CPU % | noise CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for ph in phases:
        def get(key, ph=ph):
            return med([r[ph].get(key) for r in runs])

        def fl(key, ph=ph):
            return med([(r[ph].get("flood") or {}).get(key) for r in runs])
        p99 = get("probe_p99_ms")
        accepted = med([r[ph]["metrics_delta"].get("accepted:", 0) - r[ph]["probe_ok"]
                        for r in runs])
        failures = med([sum(r[ph]["probe_errors"].values()) for r in runs])
        lines.append(
            f"| {ph} | {fmt(get('probe_p50_ms'), '{:.2f} ms')} | {fmt(p99, '{:.2f} ms')} | "
            f"{fmt(p99 / unloaded['p99'] if p99 and unloaded['p99'] else None, '{:.2f}x')} | "
            f"{fmt(failures, '{:.0f}')} | {fmt(fl('attempts_per_s'), '{:,.0f}')} | "
            f"{fmt(fl('attempts'), '{:,.0f}')} | "
            f"{fmt(get('rate_limited'), '{:,.0f}')}"
            f"{fmt(fl('rate_limited_share'), ' ({:.0%})')} | {fmt(accepted, '{:,.0f}')} | "
            f"{fmt(get('server_cpu_pct'))} | {fmt(get('server_ms_per_attempt'), '{:.3f} ms')} | "
            f"{fmt(get('gen_cpu_pct'))} | "
            f"{fmt(get('redis_cpu_pct'))} | {fmt(get('noise_cpu_pct'))} |")
    lines.append("")
    for i, r in enumerate(runs):
        lines.append(f"- run {i + 1}: " + "; ".join(
            f"{ph} p50/p99 {fmt(r[ph]['probe_p50_ms'], '{:.2f}')}/"
            f"{fmt(r[ph]['probe_p99_ms'], '{:.2f}')} ms"
            + (f", flood refusals {r[ph]['flood']['refusals']}, errors "
               f"{r[ph]['flood']['errors']}, outlasted probe "
               f"{r[ph]['flood']['outlasted_probe']}" if "flood" in r[ph] else "")
            for ph in phases))
    return "\n".join(lines)


# --- memory per idle socket, by where it was allocated (tracemalloc) ----------------------

LIBRARIES = ("site-packages/eventlet/", "site-packages/engineio/", "site-packages/socketio/",
             "site-packages/redis/", "site-packages/greenlet/", "/bridge/", "/email/",
             "/http/", "/tracemalloc.py")


def memory_main(argv: list[str]) -> int:
    """tracemalloc snapshots of the daemon before and after holding --sockets sockets."""
    p = argparse.ArgumentParser(prog="side_loads.py memory")
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--rev", default="HEAD", help="commit whose bridge/ runs")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    n = args.sockets
    trace_dir = OUT / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    for old in trace_dir.glob("snap-*"):
        old.unlink()
    os.environ["BENCH_TRACE_DIR"] = str(trace_dir)
    os.environ["BENCH_TRACE_FRAMES"] = str(args.frames)
    bench = Bench(2 * n)
    try:
        sargs = argparse.Namespace(
            daemon_cmd=f"{PY} {Path(__file__).resolve()} daemon-exp {args.rev}",
            daemon_arg=[])
        server = bench.server("daemon", sargs)
        try:
            bench.gen.call("connect_loop", url=server.url, transport="websocket",
                           concurrency=10, duration=1.0, mode="auth", sessions=2 * n, first=n)
            time.sleep(2.0)
            before, info0 = traced_snapshot(server.pid, trace_dir)
            held = bench.gen.call("hold", url=server.url, first=0, n=n, concurrency=50)
            run.wait_idle(server.pid, run.cpu_seconds(server.pid), time.monotonic(), 0)
            time.sleep(2.0)
            after, info1 = traced_snapshot(server.pid, trace_dir)
        finally:
            bench.gen.call("release", keep=0)
            server.stop()
        bench.gen.call("quit")
    finally:
        bench.stop()
    count = held["held"]
    by_site: dict[tuple[str, str], int] = {}
    by_library: dict[str, int] = {}
    for stat in after.compare_to(before, "traceback"):
        frames = list(stat.traceback)  # oldest first
        recent = frames[-1]
        lib = next((f for f in reversed(frames) if any(x in f.filename for x in LIBRARIES)),
                   recent)
        key = (short_frame(lib), short_frame(recent))
        by_site[key] = by_site.get(key, 0) + stat.size_diff
        name = next((x.strip("/").split("/")[-1] for x in LIBRARIES if x in lib.filename),
                    "other")
        by_library[name] = by_library.get(name, 0) + stat.size_diff
    traced = sum(by_site.values())
    lines = [f"### tracemalloc, {count} idle sockets (commit {args.rev}, {args.frames} frames)",
             "", f"`python bench/side_loads.py memory {' '.join(argv)}`", "",
             f"- RSS under tracing: {info0['rss_kib'] / 1024:.1f} -> "
             f"{info1['rss_kib'] / 1024:.1f} MiB "
             f"({(info1['rss_kib'] - info0['rss_kib']) / count:.1f} KiB/socket, tracing "
             f"overhead included)",
             f"- traced Python allocations: {traced / 1024 / count:.1f} KiB/socket",
             f"- greenlets: {info0['greenlets']} -> {info1['greenlets']} "
             f"({(info1['greenlets'] - info0['greenlets']) / count:.2f} per socket)", "",
             "| KiB/socket | library frame nearest the allocation | allocating line |",
             "|---|---|---|"]
    for (lib, recent), size in sorted(by_site.items(), key=lambda kv: -kv[1])[:args.top]:
        lines.append(f"| {size / 1024 / count:.2f} | `{lib}` | `{recent}` |")
    lines += ["", "| KiB/socket | library |", "|---|---|"]
    for name, size in sorted(by_library.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {size / 1024 / count:.2f} | {name} |")
    text = "\n".join(lines)
    (OUT / "memory.md").write_text(text + "\n")
    print(text)
    return 0


def short_frame(frame) -> str:
    path = re.sub(r"^.*?(site-packages/|lib/python3\.\d+/|/bridge/)", r"\1", frame.filename)
    return f"{path}:{frame.lineno}"


def traced_snapshot(pid: int, trace_dir: Path):
    import tracemalloc

    seen = set(trace_dir.glob("snap-*.snap"))
    os.kill(pid, signal.SIGUSR2)
    run.wait_until(lambda: set(trace_dir.glob("snap-*.snap")) - seen, 120, "a snapshot")
    path = sorted(set(trace_dir.glob("snap-*.snap")) - seen)[0]
    info = json.loads(path.with_suffix(".json").read_text())
    return tracemalloc.Snapshot.load(str(path)), info


def main(argv: list[str]) -> int:
    commands = {"writes": writes_main, "flood": flood_main, "memory": memory_main,
                "writer": writer_main, "probe": probe_main}
    if not argv or argv[0] not in commands:
        print(__doc__.split("\n\n")[1])
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted; every process started here has been stopped", file=sys.stderr)
        sys.exit(130)
