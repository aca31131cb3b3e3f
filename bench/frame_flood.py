"""How long one hostile websocket can hold the hub: 64 KiB reads of 6-byte frames.

    .venv/bin/python bench/frame_flood.py [--reads 200] [--opcode ping|pong]

Drives ``bridge.transport.WebSocket`` in this process over a socket pair, the way
the loop does: one ``_read`` per turn, a new turn spawned while frames of the
read wait. Each turn is the time the hub is held; a read is all its turns.
Prints milliseconds per turn and per 64 KiB read (median, p99, max).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import time

from bridge import transport

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


def one_read(ws, loop, client, data) -> list[float]:
    """Send one read's worth, let the transport handle it; the seconds of each turn."""
    client.sendall(data)
    turns, loop.spawned = [], [(ws._read, ())]
    while loop.spawned:
        function, args = loop.spawned.pop(0)
        started = time.perf_counter()
        function(*args)
        turns.append(time.perf_counter() - started)
        _drain(client)
    return turns


def _drain(client) -> None:
    try:
        while client.recv(READ):
            pass
    except BlockingIOError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--opcode", choices=OPCODES, default="ping")
    args = parser.parse_args()
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
        reads.append(sum(taken))
    assert ws.state != transport._CLOSED, "the flood was refused"
    _report("turn", turns, READ / 6 / len(turns) * args.reads)
    _report("read", reads, READ / 6)


def _report(what: str, seconds: list[float], frames: float) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"per {what}: {len(ms)} samples, ~{frames:.0f} frames each, "
          f"median {statistics.median(ms):.3f} ms, p99 {p99:.3f} ms, max {ms[-1]:.3f} ms")


if __name__ == "__main__":
    main()
