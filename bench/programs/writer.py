#!/usr/bin/env python3
"""Paced writes to redis (bench/side_loads.py writes); prints a JSON line when
started and one with what it wrote when done.

    writer.py --port PORT --duration S --mix unrelated|unrelated+del|rewrites
              [--rate 5000] [--batch 50] [--held 10000]

``unrelated``: 80% SETEX of random 32-hex ids with a session-sized value, 20%
SET of ``cache:``/``rate:`` keys; ``unrelated+del``: one write in ten a DEL of
an id written earlier; ``rewrites``: one write in five a held session (0 ..
``--held``-1) rewritten with its own content.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.lib.sessions import session_id  # noqa: E402

MIXES = ("unrelated", "unrelated+del", "rewrites")
HELD = 10_000
SESSION_LIKE = b"x" * 1400  # the size of a Predis session; content is irrelevant here
SMALL = b"y" * 200


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="writer.py")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--mix", choices=MIXES, required=True)
    p.add_argument("--held", type=int, default=HELD)
    return p.parse_args(argv)


def held_sessions(r, held: int) -> tuple[list[str], list[bytes]]:
    """The ids and contents of the held sessions that exist."""
    ids_found, values = [], []
    for start in range(0, held, 1000):
        ids = [session_id(i) for i in range(start, min(held, start + 1000))]
        pipe = r.pipeline(transaction=False)
        for sid in ids:
            pipe.get(sid)
        for sid, value in zip(ids, pipe.execute(), strict=True):
            if value is not None:
                ids_found.append(sid)
                values.append(value)
    if not ids_found:
        raise SystemExit("no held session found to rewrite")
    return ids_found, values


class Mix:
    """Which write comes next, counted by kind."""

    def __init__(self, mix: str, held: tuple[list[str], list[bytes]] = ([], [])):
        self.mix, (self.held_ids, self.held_values) = mix, held
        self.rng = random.Random(5)
        self.written: list[str] = []  # unrelated ids, oldest first, for the DELs
        self.kinds = {"setex_unrelated_id": 0, "set_other": 0, "del_unrelated_id": 0,
                      "setex_held_session": 0}

    def add(self, pipe, k: int) -> None:
        roll = self.rng.random()
        if self.mix == "rewrites" and roll < 0.2:
            j = k % len(self.held_ids)
            pipe.setex(self.held_ids[j], 3600, self.held_values[j])
            self.kinds["setex_held_session"] += 1
        elif self.mix == "unrelated+del" and roll < 0.1 and self.written:
            pipe.delete(self.written.pop(0))
            self.kinds["del_unrelated_id"] += 1
        elif self.rng.random() < 0.8:
            sid = os.urandom(16).hex()
            pipe.setex(sid, 3600, SESSION_LIKE)
            self.kinds["setex_unrelated_id"] += 1
            if self.mix == "unrelated+del":
                self.written.append(sid)
        else:
            name = self.rng.choice(("cache:product:", "cache:page:", "rate:ip:"))
            pipe.set(f"{name}{self.rng.randrange(100_000)}", SMALL)
            self.kinds["set_other"] += 1


def paced(r, mix: Mix, a: argparse.Namespace) -> dict:
    """``a.batch`` writes a pipeline, ``a.rate`` writes/s, for ``a.duration`` s."""
    period = a.batch / a.rate
    t0 = time.monotonic()
    deadline, tick, late, k = t0 + a.duration, t0, 0, 0
    while time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)
        for _ in range(a.batch):
            k += 1
            mix.add(pipe, k)
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
    return {"commands": k, "seconds": round(elapsed, 3), "rate": round(k / elapsed, 1),
            "late_batches": late, "kinds": mix.kinds}


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    import redis

    r = redis.Redis(host="127.0.0.1", port=a.port)
    mix = Mix(a.mix, held_sessions(r, a.held) if a.mix == "rewrites" else ([], []))
    print(json.dumps({"started": True, "held_ids": len(mix.held_ids)}), flush=True)
    print(json.dumps(paced(r, mix, a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
