"""Handshake CPU of the laravel preset against plain PHP sessions, on real sessions.

    python bench/preset_bench.py [--rounds 8] [--calls 1000] [--connects 400]

Starts a private redis-server, php-demo (plain PHP on Predis) and the Laravel 8
app of tests/apps (AES-256-CBC and AES-256-GCM, session encryption off and on),
logs one user into each, then times ``Authenticator.identify(session_id(cookie
header))``, which is the daemon's whole handshake decision: cookie parsing,
(Laravel) envelope check and decryption, GET, decode, user lookup. CPU is this
process's ``time.process_time()`` (redis-server's share is not counted: it is
the same GET for both). Each figure is the best of ``--rounds`` interleaved
batches of ``--calls`` calls, in microseconds per handshake, with its ratio to
plain.

Second table: the whole handshake in a real daemon (``session-bridge serve``
with the preset, handshake rate limit off): ``--connects`` python-socketio
connects and disconnects (websocket transport) one after the other, the
daemon's CPU (utime + stime of /proc/<pid>/stat) divided by the connects,
best of 3 interleaved rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.procstat import cpu_seconds  # noqa: E402
from bridge import frameworks  # noqa: E402
from bridge.auth import Authenticator  # noqa: E402
from bridge.config import PRESET_DEFAULTS, app_key_bytes  # noqa: E402
from bridge.store import SessionStore, open_redis  # noqa: E402
from devtools.cookies import cookie_of  # noqa: E402
from tests import harness  # noqa: E402

KEYS: dict[str, str] = {}
LARAVEL = [("AES-256-CBC", False), ("AES-256-GCM", False), ("AES-256-CBC", True),
           ("AES-256-GCM", True)]


def authenticator(redis, preset: str, cookie_name: str, key: str = "", cipher: str = ""):
    defaults = PRESET_DEFAULTS[preset]
    store = SessionStore(open_redis(redis.url, 1.0), defaults.get("session_prefix", ""))
    framework = frameworks.build(preset, cookie_name=cookie_name,
                                 app_keys=(app_key_bytes(key),) if key else (),
                                 app_cipher=cipher.lower() or "aes-256-cbc")
    return Authenticator(store=store, cookie_name=cookie_name, session_format="auto",
                         max_session_bytes=1 << 20, framework=framework,
                         user_key=defaults.get("user_key", "user_id"))


def cases(tmp: Path, redis, started: list) -> dict:
    demo = harness.PhpDemo(tmp, redis)
    started.append(demo)
    plain = demo.login("alice")
    found = {"plain": (authenticator(redis, "plain", "PHPSESSID"),
                       cookie_of(plain))}
    for cipher, encrypt in LARAVEL:
        key = harness.app_key(32)
        app = harness.LaravelApp(tmp, redis, key=key, cipher=cipher, encrypt=encrypt)
        started.append(app)
        name = f"laravel {cipher}{' encrypted' if encrypt else ''}"
        KEYS[name] = key
        found[name] = (authenticator(redis, "laravel", "laravel_session", key, cipher),
                       app.cookie(app.login(42), "laravel_session"))
    return found


def best_of(found: dict, rounds: int, calls: int) -> dict:
    best = {name: float("inf") for name in found}
    for _ in range(rounds):
        for name, (auth, header) in found.items():
            auth.identify(auth.session_id(header))  # warm, and proves it is admitted
            started = time.process_time()
            for _ in range(calls):
                auth.identify(auth.session_id(header))
            best[name] = min(best[name], (time.process_time() - started) / calls)
    return best


def connect_cpu(tmp: Path, redis, found: dict, rounds: int, connects: int) -> dict:
    import socketio

    daemons = {}
    for name, (auth, header) in found.items():
        args = ["--handshake-rate", "0", "--log-level", "warning"]
        if name != "plain":
            fw = auth.framework
            args += ["--preset", "laravel", "--app-cipher", fw.encrypter.cipher,
                     "--app-key", KEYS[name]]
        daemons[name] = (harness.Daemon(tmp, redis, *args), header)
    best = {name: float("inf") for name in daemons}
    try:
        for _ in range(rounds):
            for name, (daemon, header) in daemons.items():
                before = cpu_seconds(daemon.pid)
                for _ in range(connects):
                    client = socketio.Client()
                    client.connect(daemon.url, headers={"Cookie": header},
                                   transports=["websocket"], wait_timeout=5)
                    client.disconnect()
                best[name] = min(best[name], (cpu_seconds(daemon.pid) - before) / connects)
    finally:
        for daemon, _ in daemons.values():
            daemon.stop()
    return best


def table(best: dict, unit: str) -> None:
    print(f"| sessions | CPU µs per {unit} | vs plain |\n|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds * 1e6:.1f} | {seconds / best['plain']:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8,
                        help="interleaved batches of decisions; the best counts (default 8)")
    parser.add_argument("--calls", type=int, default=1000,
                        help="Authenticator decisions per batch (default 1000)")
    parser.add_argument("--connects", type=int, default=400,
                        help="connects per round in the real daemons (default 400)")
    args = parser.parse_args()
    started: list = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = harness.Redis(Path(tmp))
        started.append(redis)
        try:
            found = cases(Path(tmp), redis, started)
            best = best_of(found, args.rounds, args.calls)
            whole = connect_cpu(Path(tmp), redis, found, 3, args.connects)
        finally:
            for proc in reversed(started):
                proc.stop()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"\nAuthenticator.authenticate, best of {args.rounds} x {args.calls} calls:\n")
    table(best, "decision")
    print(f"\nWhole handshake in the daemon, best of 3 x {args.connects} connects:\n")
    table(whole, "connect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
