#!/usr/bin/env python3
"""The session-bridge benchmark: the daemon against a plain Node peer, same harness.

    python bench/run.py                       # everything, 3 runs each (~10 min on 2 vCPUs)
    python bench/run.py --quick               # 1 run, small N: a smoke test (~2 min)
    python bench/run.py --only connect-ws --only memory --servers daemon

What it starts (each in its own process group, all stopped at the end, also
on Ctrl-C or failure): a private redis-server (free port, ``--save ''``), the
server under test pinned to core 1 (``taskset -c 1``), and the load generator
(``bench/loadgen.js``: Node, socket.io-client + ioredis) with redis on core 0.
Sessions are written by PHP itself (``seed_sessions.php``: Predis's session
handler, default ``php`` serialize handler, ~1.3-1.5 KB each).

Every scenario reports, besides its own figures, the CPU seconds the server,
the generator and redis used while it ran, so a saturated generator shows.
The machine is shared: CPU time taken by other processes during a scenario
is reported as ``noise_cpu_pct``.

Results: ``bench/out/results.json`` (every run, raw), ``bench/out/report.md``
(medians of the runs and daemon/peer ratios) and the plots
``bench/out/connect_latency_cdf.png`` and ``bench/out/memory_per_socket.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEER = BENCH / "peers" / "node"
OUT = BENCH / "out"
VENV_BIN = ROOT / ".venv" / "bin"

SCENARIOS = ("connect-ws", "connect-polling", "refused-nocookie", "refused-unknown",
             "memory", "fanout", "latency", "logout")
CONNECT_SCENARIOS = SCENARIOS[:4]
HOLD_SCENARIOS = SCENARIOS[4:]
SERVERS = ("daemon", "peer")
CONCURRENCY = 50
CHANNEL = "session-bridge"
TICK = os.sysconf("SC_CLK_TCK")
HAVE_TASKSET = shutil.which("taskset") is not None


# --- processes ---------------------------------------------------------------

class Processes:
    """Every child, each in its own session (process group), stopped by stop_all()."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], core: int | None = None, pipe=False,
              cwd: Path | None = None) -> subprocess.Popen:
        if core is not None and HAVE_TASKSET:
            argv = ["taskset", "-c", str(core), *argv]
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, cwd=cwd, start_new_session=True, stderr=log,
            stdout=subprocess.PIPE if pipe else log,
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            text=pipe or None, bufsize=1 if pipe else -1)
        self.children.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 5.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        else:  # the leader is gone; its group may not be
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.children = [(n, p) for n, p in self.children if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.children)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


# --- /proc ---------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class CpuWindow:
    """CPU used by the given processes (and by everything else) over a window."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.busy = machine_busy_seconds()
        self.t0 = time.monotonic()

    def stop(self) -> dict:
        elapsed = time.monotonic() - self.t0
        used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        others = machine_busy_seconds() - self.busy - sum(used.values())
        report = {"wall_s": round(elapsed, 3)}
        for name, seconds in used.items():
            report[f"{name}_cpu_s"] = round(seconds, 3)
            report[f"{name}_cpu_pct"] = round(100 * seconds / elapsed, 1)
        report["noise_cpu_pct"] = round(100 * max(others, 0) / elapsed, 1)
        return report


# --- redis -----------------------------------------------------------------------

def start_redis(procs: Processes, name: str = "redis") -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free port and core 0, without persistence."""
    port = free_port()
    proc = procs.start(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--maxclients", "20000"],
                       core=0)
    wait_until(lambda: proc.poll() is not None or _port_open(port), 10, "redis-server")
    if proc.poll() is not None:
        raise RuntimeError(f"redis-server exited; see {OUT}/logs/{name}.log")
    return proc, port


class MiniRedis:
    """Just enough RESP for the runner (CONFIG, DBSIZE): no dependency."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def command(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.file.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError(f"bad reply {line!r}")

    def close(self) -> None:
        self.sock.close()


# --- the load generator --------------------------------------------------------

class Generator:
    def __init__(self, procs: Processes):
        self.proc = procs.start("loadgen", ["node", str(BENCH / "loadgen.js")], core=0,
                                pipe=True, cwd=BENCH)
        self.pid = self.proc.pid
        self.next_id = 0

    def call(self, cmd: str, **args):
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"id": self.next_id, "cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator died (see {OUT}/logs/loadgen.log)")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"load generator: {answer['error']}")
        return answer["result"]


# --- servers under test ------------------------------------------------------

class Server:
    def __init__(self, kind: str, procs: Processes, redis_port: int, args):
        self.kind, self.procs = kind, procs
        self.port, self.admin = free_port(), free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        if kind == "daemon":
            exe = VENV_BIN / "session-bridge"
            command = (args.daemon_cmd.split() if args.daemon_cmd else
                       [str(exe) if exe.exists() else "session-bridge"])
            argv = [*command, "serve",
                    "--port", str(self.port), "--admin-port", str(self.admin),
                    "--redis-url", redis_url, "--rooms-key", "rooms",
                    "--log-level", "warning", "--handshake-rate", "0",
                    *args.daemon_arg]
        else:
            argv = ["node", str(PEER / "server.js"), "--port", str(self.port),
                    "--admin-port", str(self.admin), "--redis-url", redis_url,
                    "--rooms-key", "rooms"]
        self.proc = procs.start(kind, argv, core=1)
        self.pid = self.proc.pid
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: self.proc.poll() is not None or http_ok(
            f"http://127.0.0.1:{self.admin}/readyz"), 30, f"{kind} /readyz")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with {self.proc.returncode}; "
                               f"see {OUT}/logs/{kind}.log")

    def stop(self) -> None:
        self.procs.stop(self.proc, timeout=15)


# --- statistics -----------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# --- scenarios ----------------------------------------------------------------------

def connect_scenario(name: str, server: Server, gen: Generator, redis_pid: int,
                     duration: float, sessions: int) -> dict:
    transport = "polling" if name == "connect-polling" else "websocket"
    mode = {"connect-ws": "auth", "connect-polling": "auth",
            "refused-nocookie": "nocookie", "refused-unknown": "unknown"}[name]
    window = CpuWindow({"server": server.pid, "gen": gen.pid, "redis": redis_pid})
    result = gen.call("connect_loop", url=server.url, transport=transport,
                      concurrency=CONCURRENCY, duration=duration, mode=mode,
                      sessions=sessions)
    cpu = window.stop()
    done = max(result["done"], 1)
    latencies = result["latencies"]
    return {
        "rate": round(result["rate"], 1),
        "done": result["done"],
        "errors": result["errors"],
        "refusals": result["refusals"],
        "p50_ms": round(pct(latencies, 50), 2) if latencies else None,
        "p99_ms": round(pct(latencies, 99), 2) if latencies else None,
        "upgraded_p50_ms": (round(pct(result["upgraded"], 50), 2)
                            if transport == "polling" and result["upgraded"] else None),
        "server_ms_per_connect": round(1000 * cpu["server_cpu_s"] / done, 3),
        "gen_ms_per_connect": round(1000 * cpu["gen_cpu_s"] / done, 3),
        "latencies_ms": [round(v, 3) for v in latencies],
        **cpu,
    }


def hold_phase(wanted: set[str], server: Server, gen: Generator, redis_pid: int,
               sizes: dict) -> dict:
    """Idle memory, fan-out, PUBLISH latency and logout, on one fresh server process.

    Order: baseline; ``small`` sockets (RSS, fan-out, one-user latency, logout of
    extra sockets opened for it); ``mid`` and ``large`` (RSS, fan-out); then
    closing ``close`` of the ``large`` sockets at once (how long the server
    stays busy). Session i is held by socket i; logout uses sessions at the top
    of the seeded range, so the held ones stay logged in.
    """
    out: dict = {}
    small, large = sizes["small"], sizes["large"]
    levels = [small]
    if "memory" in wanted:
        levels += [sizes["mid"], large]
    elif "fanout" in wanted:
        levels.append(large)
    # Warm the server up (lazy imports, JIT), close those sockets, settle, then baseline.
    gen.call("connect_loop", url=server.url, transport="websocket", concurrency=10,
             duration=1.0, mode="auth", sessions=2 * large, first=large)
    time.sleep(2.0)
    baseline = rss_kib(server.pid)
    out["rss_baseline_kib"] = baseline
    out["levels"] = []
    pids = {"server": server.pid, "gen": gen.pid, "redis": redis_pid}
    opened = 0
    for n in levels:
        window = CpuWindow(pids)
        held = gen.call("hold", url=server.url, first=opened, n=n, concurrency=CONCURRENCY)
        cpu = window.stop()
        opened = n
        time.sleep(2.0)
        rss = rss_kib(server.pid)
        level = {"n": n, "held": held["held"], "failures": held["failures"],
                 "connect_seconds": round(held["seconds"], 2), "rss_kib": rss,
                 "kib_per_socket": round((rss - baseline) / max(held["held"], 1), 2),
                 "gen_rss_kib": rss_kib(gen.pid), "connect_cpu": cpu}
        out["levels"].append(level)
        log(f"    {n:>6} sockets: RSS {rss / 1024:.1f} MiB, "
            f"{level['kib_per_socket']:.1f} KiB/socket, connected in {held['seconds']:.1f}s"
            + (f", failures {held['failures']}" if held["failures"] else ""))
        if "fanout" in wanted and n in (small, large):
            out[f"fanout_{n}"] = fanout(gen, pids, n, sizes["fanout_reps"])
        if n == small and "latency" in wanted:
            window = CpuWindow(pids)
            result = gen.call("user_latency", count=sizes["publishes"], below=small)
            lat = result["latencies"]
            out["latency"] = {"count": len(lat), "timeouts": result["timeouts"],
                              "p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3),
                              "latencies_ms": [round(v, 3) for v in lat], **window.stop()}
            log(f"    PUBLISH->receipt one user: p50 {out['latency']['p50_ms']:.2f} ms, "
                f"p99 {out['latency']['p99_ms']:.2f} ms")
        if n == small and "logout" in wanted:
            first = 2 * large - sizes["logouts"]
            gen.call("hold", url=server.url, first=first, n=2 * large, concurrency=CONCURRENCY)
            time.sleep(1.0)
            window = CpuWindow(pids)
            result = gen.call("logout", first=first, count=sizes["logouts"])
            lat = result["latencies"]
            out["logout"] = {"count": len(lat), "timeouts": result["timeouts"],
                             "sockets_connected": small + sizes["logouts"],
                             "session_ended_seen": result["session_ended_seen"],
                             "p50_ms": round(pct(lat, 50), 3) if lat else None,
                             "p99_ms": round(pct(lat, 99), 3) if lat else None,
                             "latencies_ms": [round(v, 3) for v in lat], **window.stop()}
            log(f"    DEL->disconnect ({small} other sockets connected): p50 "
                f"{out['logout']['p50_ms']} ms, p99 {out['logout']['p99_ms']} ms, "
                f"{result['timeouts']} timeouts, session_ended seen "
                f"{result['session_ended_seen']}/{len(lat)}")
    if levels[-1] == large and large > small:
        # Close `close` sockets at once while the rest stay: how long is the server busy?
        # (python-socketio's disconnect scans every room: O(sockets) per disconnect.)
        close = sizes["close"]
        cpu0, t_release = cpu_seconds(server.pid), time.monotonic()
        gen.call("release", keep=large - close, until=large)
        out["mass_disconnect"] = wait_idle(server.pid, cpu0, t_release, close)
        out["mass_disconnect"]["sockets_left"] = gen.call("ping")["held"]
        log(f"    closing {close} of {large} sockets at once kept the server busy for "
            f"{out['mass_disconnect']['busy_s']} s ({out['mass_disconnect']['cpu_s']} CPU s)")
    return out


def wait_idle(pid: int, cpu0: float, t0: float, closed: int, limit: float = 90.0) -> dict:
    """Wait until the server uses under 5% CPU over 0.5 s; report how long that took."""
    busy_until = time.monotonic()
    while time.monotonic() - t0 < limit:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            break
        busy_until = time.monotonic()
    return {"closed": closed, "busy_s": round(busy_until - t0, 2),
            "cpu_s": round(cpu_seconds(pid) - cpu0, 2)}


def fanout(gen: Generator, pids: dict, n: int, reps: int) -> dict:
    window = CpuWindow(pids)
    result = gen.call("fanout", room="lobby", reps=reps, gap_ms=500)
    cpu = window.stop()
    times = [r["all_ms"] for r in result["results"] if "all_ms" in r]
    firsts = [r["first_ms"] for r in result["results"] if "first_ms" in r]
    summary = {"sockets": result["sockets"], "reps": reps,
               "timeouts": sum(1 for r in result["results"] if r.get("timeout")),
               "all_ms_median": round(median(times), 2) if times else None,
               "first_ms_median": round(median(firsts), 2) if firsts else None,
               "all_ms": [round(t, 2) for t in times],
               "server_cpu_ms_per_event": round(1000 * cpu["server_cpu_s"] / reps, 2),
               "gen_cpu_ms_per_event": round(1000 * cpu["gen_cpu_s"] / reps, 2), **cpu}
    log(f"    fan-out to {result['sockets']}: all received in "
        f"{summary['all_ms_median']} ms (median of {reps})")
    return summary


# --- the run -------------------------------------------------------------------------

def log(text: str) -> None:
    print(text, flush=True)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    for limit in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_node_modules() -> None:
    for folder in (BENCH, PEER):
        if not (folder / "node_modules").is_dir():
            log(f"npm ci in {folder.relative_to(ROOT)}")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True)


def seed(redis_port: int, count: int) -> dict:
    out = subprocess.run(["php", str(BENCH / "seed_sessions.php"), "127.0.0.1",
                          str(redis_port), str(count)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def versions() -> dict:
    def run(*argv, cwd=None):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                                  timeout=20).stdout.strip()
        except OSError:
            return "?"

    def npm_version(folder: Path, name: str) -> str:
        try:
            return json.loads((folder / "node_modules" / name / "package.json")
                              .read_text())["version"]
        except OSError:
            return "?"

    py = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
    pyv = run(py, "-c", "import sys, importlib.metadata as m; print(sys.version.split()[0], "
                        "*[m.version(p) for p in ('python-socketio', 'python-engineio', "
                        "'eventlet', 'redis')])").split()
    lscpu = run("lscpu")
    model = re.search(r"Model name:\s*(.+)", lscpu)
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": pyv[0] if pyv else "?",
        "python-socketio": pyv[1] if len(pyv) > 1 else "?",
        "python-engineio": pyv[2] if len(pyv) > 2 else "?",
        "eventlet": pyv[3] if len(pyv) > 3 else "?",
        "redis-py": pyv[4] if len(pyv) > 4 else "?",
        "node": run("node", "--version"),
        "socket.io": npm_version(PEER, "socket.io"),
        "engine.io": npm_version(PEER, "engine.io"),
        "ws (server)": npm_version(PEER, "ws"),
        "ioredis": npm_version(PEER, "ioredis"),
        "php-serialize": npm_version(PEER, "php-serialize"),
        "socket.io-client": npm_version(BENCH, "socket.io-client"),
        "redis-server": run("redis-server", "--version").split(" v=")[-1].split()[0],
        "php": run("php", "-r", "echo PHP_VERSION;"),
        "taskset": HAVE_TASKSET,
        # The daemon runs from the work tree (editable install): say which one.
        "bridge_commit": run("git", "rev-parse", "--short", "HEAD", cwd=ROOT),
        "bridge_dirty_files": run("git", "status", "--porcelain", "--", "bridge",
                                  cwd=ROOT).count("\n") + bool(run(
                                      "git", "status", "--porcelain", "--", "bridge", cwd=ROOT)),
    }


def profile_daemon(procs: Processes, gen: Generator, redis_port: int, args,
                   duration: float, sessions: int) -> dict:
    """py-spy on the daemon during the authorized websocket connect scenario."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists() and not shutil.which("py-spy"):
        log("  (py-spy not installed: no profile; pip install -r bench/requirements.txt)")
        return {}
    spy_cmd = str(spy) if spy.exists() else "py-spy"
    summary = {}
    for fmt, path in (("flamegraph", OUT / "profile.svg"), ("raw", OUT / "profile.txt")):
        server = Server("daemon", procs, redis_port, args)
        try:
            gen.call("connect_loop", url=server.url, transport="websocket", concurrency=10,
                     duration=1.0, mode="auth", sessions=sessions)
            recorder = procs.start(f"py-spy-{fmt}", [
                spy_cmd, "record", "--pid", str(server.pid), "--rate", "250",
                "--duration", str(int(duration) + 1), "--format", fmt, "--output", str(path),
                "--nonblocking"], core=0)
            time.sleep(1.0)
            gen.call("connect_loop", url=server.url, transport="websocket",
                     concurrency=CONCURRENCY, duration=duration, mode="auth", sessions=sessions)
            recorder.wait(timeout=duration + 30)
        finally:
            server.stop()
    if (OUT / "profile.txt").exists():
        summary = summarize_profile(OUT / "profile.txt")
    return summary


def summarize_profile(path: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((.*?/)?(site-packages/)?", " (", f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    idle = sum(n for f, n in own.items() if "do_poll" in f or "epoll" in f)

    def table(counts):
        return [(f, round(100 * n / total, 1)) for f, n in
                sorted(counts.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "idle_pct": round(100 * idle / max(total, 1), 1),
            "self": table(own), "inclusive": table(inclusive)}


def report(results: dict, path: Path) -> None:
    """Medians over runs and daemon/peer ratios, as markdown."""
    runs = results["runs"]
    lines = [f"# session-bridge benchmark report ({results['started']})", "",
             f"runs per scenario: {results['runs_per_scenario']}; "
             f"concurrency {CONCURRENCY}; command: `{results['command']}`", ""]

    def med(server, getter):
        values = []
        for run in runs:
            try:
                values.append(getter(run[server]))
            except (KeyError, TypeError, IndexError):
                pass
        return median(values)

    def ratio(d, p, higher_better=True):
        if d is None or p is None or p == 0 or d == 0:
            return ""
        return f"{d / p:.2f}x"

    def row(label, getter, unit="", fmt="{:.1f}"):
        d = med("daemon", getter)
        p = med("peer", getter)
        show = lambda v: "" if v is None else fmt.format(v) + unit  # noqa: E731
        lines.append(f"| {label} | {show(d)} | {show(p)} | {ratio(d, p)} |")

    lines += ["| figure (median of runs) | daemon | peer | daemon/peer |", "|---|---|---|---|"]
    for name in CONNECT_SCENARIOS:
        g = lambda r, n=name, k="rate": r[n][k]  # noqa: E731
        row(f"{name}: connects/s", g, "/s")
        row(f"{name}: p50 latency", lambda r, n=name: r[n]["p50_ms"], " ms", "{:.2f}")
        row(f"{name}: p99 latency", lambda r, n=name: r[n]["p99_ms"], " ms", "{:.2f}")
        row(f"{name}: server CPU per connect",
            lambda r, n=name: r[n]["server_ms_per_connect"], " ms", "{:.3f}")
        row(f"{name}: server CPU %", lambda r, n=name: r[n]["server_cpu_pct"], " %")
        row(f"{name}: generator CPU %", lambda r, n=name: r[n]["gen_cpu_pct"], " %")
        row(f"{name}: noise CPU % (other processes)",
            lambda r, n=name: r[n]["noise_cpu_pct"], " %")
    row("connect-polling: p50 until upgraded",
        lambda r: r["connect-polling"]["upgraded_p50_ms"], " ms", "{:.2f}")
    levels = sorted({lv["n"] for run in runs for s in SERVERS
                     for lv in run.get(s, {}).get("hold", {}).get("levels", [])})
    row("RSS baseline", lambda r: r["hold"]["rss_baseline_kib"] / 1024, " MiB")
    for n in levels:
        pick = lambda r, n=n: next(lv for lv in r["hold"]["levels"] if lv["n"] == n)  # noqa: E731
        row(f"RSS with {n} idle sockets", lambda r, p=pick: p(r)["rss_kib"] / 1024, " MiB")
        row(f"memory per idle socket at {n}", lambda r, p=pick: p(r)["kib_per_socket"],
            " KiB")
    for key in sorted({k for run in runs for s in SERVERS
                       for k in run.get(s, {}).get("hold", {}) if k.startswith("fanout_")},
                      key=lambda k: int(k.split("_")[1])):
        row(f"fan-out to {key.split('_')[1]}: all received",
            lambda r, k=key: r["hold"][k]["all_ms_median"], " ms")
        row(f"fan-out to {key.split('_')[1]}: first received",
            lambda r, k=key: r["hold"][k]["first_ms_median"], " ms", "{:.2f}")
        row(f"fan-out to {key.split('_')[1]}: server CPU per event",
            lambda r, k=key: r["hold"][k]["server_cpu_ms_per_event"], " ms")
        row(f"fan-out to {key.split('_')[1]}: generator CPU per event",
            lambda r, k=key: r["hold"][k]["gen_cpu_ms_per_event"], " ms")
    close, large = results["sizes"]["close"], results["sizes"]["large"]
    row(f"closing {close} of {large} sockets at once: server busy for",
        lambda r: r["hold"]["mass_disconnect"]["busy_s"], " s", "{:.2f}")
    row(f"closing {close} of {large} sockets at once: server CPU",
        lambda r: r["hold"]["mass_disconnect"]["cpu_s"], " s", "{:.2f}")
    row("PUBLISH->receipt one user p50", lambda r: r["hold"]["latency"]["p50_ms"], " ms",
        "{:.2f}")
    row("PUBLISH->receipt one user p99", lambda r: r["hold"]["latency"]["p99_ms"], " ms",
        "{:.2f}")
    row("DEL->disconnect p50", lambda r: r["hold"]["logout"]["p50_ms"], " ms", "{:.2f}")
    row("DEL->disconnect p99", lambda r: r["hold"]["logout"]["p99_ms"], " ms", "{:.2f}")
    lines += ["", "Ratios are daemon/peer: above 1 means the daemon's figure is larger "
              "(better for rates, worse for latency, CPU and memory).", ""]
    if results.get("probe"):
        lines += [f"WebSocket extensions offered by the generator: "
                  f"`{results['probe'].get('offered')}`; negotiated: "
                  + ", ".join(f"{k} `{v or 'none'}`" for k, v in
                              results["probe"].get("negotiated", {}).items()), ""]
    prof = results.get("profile")
    if prof:
        lines += [f"## Daemon profile (py-spy, connect-ws, {prof['samples']} samples, "
                  f"{prof['idle_pct']}% idle in epoll)", "", "| self % | function |", "|---|---|"]
        lines += [f"| {share} | `{frame}` |" for frame, share in prof["self"]]
        lines += ["", "| inclusive % | function |", "|---|---|"]
        lines += [f"| {share} | `{frame}` |" for frame, share in prof["inclusive"]]
    path.write_text("\n".join(lines) + "\n")


def plots(results: dict) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("  (matplotlib not installed: no plots; pip install -r bench/requirements.txt)")
        return []
    made = []
    colors = {"daemon": "tab:blue", "peer": "tab:orange"}
    labels = {"daemon": "session-bridge (python-socketio/eventlet)",
              "peer": "Node peer (socket.io)"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, scenario in zip(axes, ("connect-ws", "connect-polling"), strict=True):
        for server in SERVERS:
            values = sorted(v for run in results["runs"]
                            for v in run.get(server, {}).get(scenario, {})
                            .get("latencies_ms", []))
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                ax.plot(values, ys, color=colors[server], label=labels[server])
        ax.set_xscale("log")
        ax.set_xlabel("connect latency (ms, log scale)")
        ax.set_ylabel("fraction of connects")
        ax.set_title(f"{scenario}: {CONCURRENCY} concurrent connectors")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "connect_latency_cdf.png", dpi=110)
    plt.close(fig)
    made.append("connect_latency_cdf.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for server in SERVERS:
        per_n: dict[int, list[float]] = {}
        for run in results["runs"]:
            for lv in run.get(server, {}).get("hold", {}).get("levels", []):
                per_n.setdefault(lv["n"], []).append(lv["kib_per_socket"])
        if per_n:
            ns = sorted(per_n)
            ax.plot(ns, [statistics.median(per_n[n]) for n in ns], marker="o",
                    color=colors[server], label=labels[server])
    ax.set_xlabel("idle authenticated sockets held")
    ax.set_ylabel("KiB of server RSS per socket")
    ax.set_title("memory per idle socket: (RSS_N - RSS_baseline) / N")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "memory_per_socket.png", dpi=110)
    plt.close(fig)
    made.append("memory_per_socket.png")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, small N (smoke test)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=[],
                        metavar="SCENARIO", help=f"run only this scenario (repeatable): "
                        f"{', '.join(SCENARIOS)}")
    parser.add_argument("--servers", default="daemon,peer",
                        help="comma list of servers: daemon, peer (default both)")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per connect scenario run")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--daemon-cmd", default="",
                        help="command that runs the daemon instead of .venv/bin/session-bridge "
                        "(e.g. a launcher applying an experimental patch)")
    parser.add_argument("--daemon-arg", action="append", default=[],
                        help="extra argument for session-bridge serve (repeatable)")
    args = parser.parse_args(argv)
    wanted = set(args.only or SCENARIOS)
    servers = [s for s in args.servers.split(",") if s]
    if not set(servers) <= set(SERVERS):
        parser.error(f"--servers takes {', '.join(SERVERS)}")
    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or (3.0 if args.quick else 8.0)
    sizes = ({"small": 200, "mid": 500, "large": 1000, "fanout_reps": 3, "publishes": 50,
              "logouts": 30, "close": 200} if args.quick else
             {"small": 1000, "mid": 5000, "large": 10000, "fanout_reps": 5, "publishes": 200,
              "logouts": 200, "close": 1000})
    pool = sizes["large"] * 2  # held sockets use 0..large-1, warm-ups large..2*large-1

    OUT.mkdir(exist_ok=True)
    (OUT / "logs").mkdir(exist_ok=True)
    for old in (OUT / "logs").glob("*.log"):
        old.unlink()
    fds = raise_fd_limit()
    procs = Processes(OUT / "logs")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.monotonic()
    results = {"started": started, "command": " ".join(["python bench/run.py", *(
        argv if argv is not None else sys.argv[1:])]), "runs_per_scenario": runs,
        "sizes": sizes, "duration_s": duration, "fd_limit": fds, "versions": versions(),
        "runs": []}
    log(f"bench: {', '.join(s for s in SCENARIOS if s in wanted)} on {', '.join(servers)}; "
        f"{runs} run(s); fd limit {fds}; taskset {'yes' if HAVE_TASKSET else 'NO'}")
    try:
        ensure_node_modules()
        redis, redis_port = start_redis(procs)
        r = MiniRedis(redis_port)
        seeded = seed(redis_port, pool)
        if r.command("DBSIZE") != pool:
            raise RuntimeError("seeding did not write every session")
        results["sessions"] = seeded
        log(f"seeded {seeded['written']} PHP sessions ({seeded['bytes_min']}-"
            f"{seeded['bytes_max']} bytes) in {seeded['seconds']}s")
        gen = Generator(procs)
        gen.call("redis", url=f"redis://127.0.0.1:{redis_port}/0")
        results["probe"] = {"offered": gen.call("probe")["offered"], "negotiated": {}}
        for rep in range(runs):
            run: dict = {}
            order = servers if rep % 2 == 0 else list(reversed(servers))
            for kind in order:
                run[kind] = {}
                todo = [s for s in CONNECT_SCENARIOS if s in wanted]
                if todo:
                    server = Server(kind, procs, redis_port, args)
                    try:
                        if kind not in results["probe"]["negotiated"]:
                            results["probe"]["negotiated"][kind] = gen.call(
                                "probe", url=server.url)["negotiated"]
                        gen.call("connect_loop", url=server.url, transport="websocket",
                                 concurrency=CONCURRENCY, duration=1.0, mode="auth",
                                 sessions=pool)  # warm-up
                        for name in todo:
                            res = connect_scenario(name, server, gen, redis.pid, duration,
                                                   pool)
                            run[kind][name] = res
                            log(f"run {rep + 1} {kind:6} {name:17} {res['rate']:7.1f}/s "
                                f"p50 {res['p50_ms']} ms p99 {res['p99_ms']} ms | CPU/connect"
                                f" server {res['server_ms_per_connect']:.2f} ms, generator "
                                f"{res['gen_ms_per_connect']:.2f} ms | CPU% server "
                                f"{res['server_cpu_pct']}, generator {res['gen_cpu_pct']}, "
                                f"noise {res['noise_cpu_pct']}"
                                + (f" | errors {res['errors']}" if res["errors"] else ""))
                    finally:
                        server.stop()
                if wanted & set(HOLD_SCENARIOS):
                    log(f"run {rep + 1} {kind:6} held sockets")
                    server = Server(kind, procs, redis_port, args)
                    try:
                        run[kind]["hold"] = hold_phase(wanted, server, gen, redis.pid, sizes)
                    finally:
                        server.stop()
                        gen.call("release", keep=0)
                    if "logout" in wanted:
                        seed(redis_port, pool)  # put the logged-out sessions back
            results["runs"].append(run)
            (OUT / "results.json").write_text(json.dumps(results))
        if "daemon" in servers and "connect-ws" in wanted and not args.no_profile:
            log("profiling the daemon (py-spy) during connect-ws")
            results["profile"] = profile_daemon(procs, gen, redis_port, args, duration, pool)
        r.close()
        gen.call("quit")
    finally:
        procs.stop_all()
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    (OUT / "results.json").write_text(json.dumps(results))
    report(results, OUT / "report.md")
    made = plots(results)
    log(f"done in {results['elapsed_s']:.0f}s: {OUT / 'report.md'}, {OUT / 'results.json'}"
        + (", " + ", ".join(str(OUT / m) for m in made) if made else ""))
    return 0


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process the bench started has been stopped", file=sys.stderr)
        sys.exit(130)
