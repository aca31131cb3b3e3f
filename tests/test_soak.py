"""Soak: churn for a long time (30 minutes by default) and watch the daemon's RSS and fds.

Run with ``make soak`` (``SOAK_SECONDS`` shortens it); kept out of the default
run by the ``soak`` marker. Churn per round: new sockets replace old ones,
PHP publishes to users and to everyone, a user logs out (their sockets end)
and logs in again, refused connects. The daemon's VmRSS and open descriptors
are sampled every few seconds; after a warm-up, the mean of the last stretch
must be within 5 % of the mean right after warm-up. Figures are printed and
written to ``bench/out/soak.json``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

import pytest
import websocket

from bridge import events
from tests import harness

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
WARMUP = min(300.0, SECONDS / 6)
WINDOW = min(120.0, SECONDS / 6)
SOCKETS = 200
USERS = ["alice", "bob", "carol", "dave"]


def sample(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def open_socket(port: int, cookie: str):
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", cookie=cookie,
        timeout=10)
    ws.recv()
    ws.send("40")
    return ws, ws.recv().startswith('40{"sid"')


def drain(ws) -> None:
    """Read what the daemon pushed (events, pings) without blocking."""
    ws.settimeout(0)
    try:
        while True:
            frame = ws.recv()
            if frame == "2":
                ws.send("3")
    except (websocket.WebSocketException, OSError, BlockingIOError):
        pass
    finally:
        ws.settimeout(10)


def test_soak(php, redis_server, start_daemon):
    daemon = start_daemon(redis_server, "--handshake-rate", "0", "--max-sockets-per-user",
                          "1000", "--log-level", "warning")
    pid = daemon.popen.pid
    rng = random.Random(7)
    browsers = {name: php.login(name) for name in USERS}
    publisher = redis_server.client()
    open_sockets = []
    samples, rounds, ends = [], 0, 0
    started = last_sample = time.monotonic()
    while time.monotonic() - started < SECONDS:
        rounds += 1
        for _ in range(20):  # churn: new sockets replace the oldest
            name = rng.choice(USERS)
            ws, ok = open_socket(daemon.port, harness.cookie_of(browsers[name]))
            open_sockets.append(ws) if ok else ws.close()
        while len(open_sockets) > SOCKETS:
            open_sockets.pop(0).close()
        for _ in range(5):  # as PHP's emitter would publish
            publisher.publish("session-bridge", events.encode(
                "tick", {"r": rounds}, user=rng.randint(1, 3)))
        victim = rng.choice(USERS)  # logout ends their sockets; log in again
        php.post(browsers[victim], "logout.php")
        browsers[victim] = php.login(victim)
        ends += 1
        open_socket(daemon.port, "PHPSESSID=0970380a272f099448c08da7b900108d")[0].close()
        for ws in open_sockets:
            drain(ws)
        open_sockets = [ws for ws in open_sockets if ws.connected]
        if time.monotonic() - last_sample >= 5:
            last_sample = time.monotonic()
            samples.append((last_sample - started, *sample(pid)))
        assert daemon.alive(), daemon.log()[-3000:]
    for ws in open_sockets:
        ws.close()
    report = summarize(samples, rounds, ends)
    print(json.dumps(report, indent=2))
    out = harness.ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps({**report, "samples": samples}, indent=1))
    assert report["rss_growth_pct"] < 5, report
    assert report["fd_growth_pct"] < 5, report


def summarize(samples, rounds: int, ends: int) -> dict:
    after = [s for s in samples if WARMUP <= s[0] < WARMUP + WINDOW]
    last = [s for s in samples if s[0] >= samples[-1][0] - WINDOW]
    rss0, rss1 = statistics.mean(s[1] for s in after), statistics.mean(s[1] for s in last)
    fd0, fd1 = statistics.mean(s[2] for s in after), statistics.mean(s[2] for s in last)
    return {
        "seconds": round(samples[-1][0]), "rounds": rounds, "logouts": ends,
        "rss_kb_after_warmup": round(rss0), "rss_kb_at_end": round(rss1),
        "rss_growth_pct": round(100 * (rss1 - rss0) / rss0, 2),
        "fds_after_warmup": round(fd0, 1), "fds_at_end": round(fd1, 1),
        "fd_growth_pct": round(100 * (fd1 - fd0) / fd0, 2),
    }
