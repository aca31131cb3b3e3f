"""How long one hostile websocket can hold the hub: 64 KiB reads of 6-byte frames.

    .venv/bin/python bench/frame_flood.py [--reads 200] [--opcode ping|pong]
    .venv/bin/python bench/frame_flood.py --daemon [--seconds 10]

In process (default): drives ``bridge.transport.WebSocket`` over a socket pair,
the way the loop does: one ``_read`` per turn, a new turn spawned while frames
of the read wait. Each turn is the time the hub is held; a read is all its
turns. Prints milliseconds per turn and per 64 KiB read (median, p99, max).

``--daemon``: the real daemon (redis-server, php -S and the daemon started by
the tests' harness), one client flooding it with 6-byte ping frames while
another times ``whoami`` round trips; prints their latency with and without
the flood.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bridge import transport  # noqa: E402

READ = 65536
OPCODES = {"ping": 9, "pong": 10}


class Loop:
    """``transport.Loop`` without a hub: spawned calls wait in a list."""

    def __init__(self):
        self.spawned = []

    def on_readable(self, fileno, callback):
        return callback

    on_writable = on_readable

    def cancel(self, handle):
        pass

    def call_later(self, seconds, function, *args):
        pass

    def spawn(self, function, *args):
        self.spawned.append((function, args))


class Eio:
    connected = upgraded = True
    closed = False


def flood(opcode: int, n: int) -> bytes:
    """Read ``n`` of an endless stream of masked, empty client frames (6 bytes each)."""
    one = struct.pack("!BB", 0x80 | opcode, 0x80) + os.urandom(4)
    at = n * READ % len(one)
    return (one * (READ // len(one) + 2))[at:at + READ]


def one_read(ws, loop, client, data) -> list[tuple[float, float]]:
    """Send one read's worth, let the transport handle it; (wall, CPU) seconds of each turn.

    Wall time includes whatever else the machine ran meanwhile; CPU time is this turn's own.
    """
    client.sendall(data)
    turns, loop.spawned = [], [(ws._read, ())]
    while loop.spawned:
        function, args = loop.spawned.pop(0)
        started, cpu = time.perf_counter(), time.thread_time()
        function(*args)
        turns.append((time.perf_counter() - started, time.thread_time() - cpu))
        _drain(client)
    return turns


def _drain(client) -> None:
    try:
        while client.recv(READ):
            pass
    except BlockingIOError:
        pass


def in_process(args) -> None:
    server, client = socket.socketpair()
    for end in (server, client):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    server.setblocking(False)
    client.setblocking(False)
    loop = Loop()
    ws = transport.WebSocket(Eio(), server, loop, 100_000)
    turns, reads = [], []
    for n in range(args.reads):
        taken = one_read(ws, loop, client, flood(OPCODES[args.opcode], n))
        turns += taken
        reads.append(tuple(map(sum, zip(*taken, strict=True))))
    assert ws.state != transport._CLOSED, "the flood was refused"
    frames = READ / 6 / len(turns) * args.reads
    _report("turn (wall)", [wall for wall, _ in turns], frames)
    _report("turn (CPU)", [cpu for _, cpu in turns], frames)
    _report("read (wall)", [wall for wall, _ in reads], READ / 6)
    _report("read (CPU)", [cpu for _, cpu in reads], READ / 6)


def _report(what: str, seconds: list[float], frames: float) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    each = f", ~{frames:.0f} frames each" if frames else ""
    print(f"per {what}: {len(ms)} samples{each}, "
          f"median {statistics.median(ms):.3f} ms, p99 {p99:.3f} ms, max {ms[-1]:.3f} ms, "
          f"over 1 ms: {sum(m > 1 for m in ms)}")


def against_daemon(seconds: float) -> None:
    from tests import harness
    from tests.test_transport import RawWebSocket

    with tempfile.TemporaryDirectory() as tmp:
        procs = [harness.Redis(pathlib.Path(tmp))]
        try:
            procs.append(harness.PhpDemo(pathlib.Path(tmp), procs[0]))
            procs.append(harness.Daemon(pathlib.Path(tmp), procs[0]))
            browser = procs[1].login("alice")
            cookie = harness.cookie_of(browser)
            probe = RawWebSocket(procs[2].port, cookie).connected()
            _report("whoami, idle", _round_trips(probe, seconds), 0)
            flooder = RawWebSocket(procs[2].port, cookie).connected()
            sent = _flood_in_background(flooder, seconds + 1)
            _report("whoami, flooded", _round_trips(probe, seconds), 0)
            print(f"flood: {sent[0] / seconds / 1e6:.1f} MB/s of 6-byte ping frames sent")
            print("daemon warnings:", *[line for line in procs[2].log().splitlines()
                                        if "WARNING" in line or "ERROR" in line], sep="\n  ")
        finally:
            for proc in reversed(procs):
                proc.stop()


def _round_trips(ws, seconds: float) -> list[float]:
    """One ``whoami`` every 60 ms (the daemon drops a socket past 20 events/s)."""
    took, deadline, n = [], time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        n += 1
        started = time.perf_counter()
        ws.send_text(f'42{n}["whoami"]')
        while not ws.recv_text().startswith(f"43{n}["):
            pass
        took.append(time.perf_counter() - started)
        time.sleep(max(0.0, 0.06 - took[-1]))
    return took


def _flood_in_background(ws, seconds: float) -> list[int]:
    sent = [0]
    ws.sock.settimeout(None)

    def send():
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            data = flood(OPCODES["ping"], n)
            try:
                ws.sock.sendall(data)
            except OSError:  # the daemon stopped (end of the run) or dropped this client
                return
            sent[0], n = sent[0] + len(data), n + 1

    def drain():  # the pongs, so the daemon never waits on this client
        try:
            while ws.sock.recv(READ):
                pass
        except OSError:
            return

    threading.Thread(target=send, daemon=True).start()
    threading.Thread(target=drain, daemon=True).start()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--opcode", choices=OPCODES, default="ping")
    parser.add_argument("--daemon", action="store_true", help="against a real daemon")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if args.daemon:
        against_daemon(args.seconds)
    else:
        in_process(args)


if __name__ == "__main__":
    main()
