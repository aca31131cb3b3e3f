#!/usr/bin/env python3
"""Sequential authorized connects from a bound source address (bench/side_loads.py
flood); prints a JSON line when started and one with the latencies when done.

    probe.py --port PORT [--source 127.0.0.2] [--count 400] [--interval 0.04]
             [--first 0] [--pool 200]

Each connect: TCP connect from ``--source``, Engine.IO open, ``40``, wait for
the ``40{...}`` answer, close; one every ``--interval`` s, with the cookie of
session ``first + n % pool``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.lib.sessions import session_id  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="probe.py")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2")
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--interval", type=float, default=0.04)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--pool", type=int, default=200)
    return p.parse_args(argv)


def handshake(port: int, source: str, cookie: str):
    """One Socket.IO connect over a websocket from ``source``; the open socket."""
    import websocket

    sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", socket=sock,
        cookie=cookie, timeout=10, suppress_origin=True)
    try:
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
    except BaseException:
        close(ws)
        raise
    return ws


def close(ws) -> None:
    import websocket

    try:
        ws.close(timeout=1)
    except (OSError, websocket.WebSocketException):
        pass


def probe(a: argparse.Namespace) -> dict:
    import websocket

    latencies: list[float] = []
    errors: dict[str, int] = {}
    t0 = time.monotonic()
    next_at = t0
    for n in range(a.count):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += a.interval
        started = time.perf_counter()
        try:
            ws = handshake(a.port, a.source, f"PHPSESSID={session_id(a.first + n % a.pool)}")
            latencies.append(1000 * (time.perf_counter() - started))
            close(ws)
        except (OSError, RuntimeError, websocket.WebSocketException) as exc:
            key = type(exc).__name__ + ":" + str(exc)[:80]
            errors[key] = errors.get(key, 0) + 1
    return {"latencies_ms": [round(v, 3) for v in latencies], "errors": errors,
            "seconds": round(time.monotonic() - t0, 3)}


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    print(json.dumps({"started": True}), flush=True)
    print(json.dumps(probe(a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
