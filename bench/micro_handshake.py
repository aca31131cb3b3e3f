#!/usr/bin/env python3
"""CPU of single pieces of a handshake, old way against new way, interleaved in one process.

    .venv/bin/python bench/micro_handshake.py             # all pieces
    .venv/bin/python bench/micro_handshake.py head        # one piece
    .venv/bin/python bench/micro_handshake.py request     # eventlet.wsgi vs bridge.httpserver

On a machine shared with other work, end-to-end runs minutes apart differ by
more than one piece of a connect is worth. Here the two ways of doing the
same thing run in alternating blocks of a few milliseconds (``ROUNDS``
rounds), each block timed with ``time.process_time``; the median per
operation of each way, and the median of the per-round ratios, are printed.

Pieces:
  head   a websocket upgrade request's head: http.server's parse_request
         (``http.client.parse_headers``, i.e. the ``email`` package) behind
         eventlet.wsgi's size-limited reader, against ``bridge.httphead`` on
         the bytes received
  request  whole polling-like requests over loopback, each on a new TCP
         connection (connect, request, answer, close), to eventlet.wsgi.server
         (as the daemon ran it before bridge.httpserver) against
         ``bridge.httpserver``; the client's CPU is in both (only when named:
         it monkey-patches with eventlet)
  recheck  the session watch's re-reads after N subscription confirmations:
         N GETs one by one (``Authenticator.identify``) against one pipeline
         (``Authenticator.identify_many``); a private redis-server, PHP's
         sessions
  parser redis-py's reply parser for the session GET: its pure-Python RESP3
         parser against hiredis (when installed)
  batch  K concurrent handshakes' session GETs: one pooled GET each against
         ``store.GetBatch`` (only when named: it monkey-patches with eventlet)
"""

from __future__ import annotations

import io
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = 40

HEAD = (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Cookie: PHPSESSID=0970380a272f099448c08da7b900108d\r\n"
        b"Host: 127.0.0.1:40123\r\n\r\n")


def compare(name: str, old, new, per_block: int, unit: str = "op") -> dict:
    """Alternate blocks of ``per_block`` calls of old() and new(); medians per call."""
    times = {"old": [], "new": []}
    for rnd in range(ROUNDS):
        order = (("old", old), ("new", new)) if rnd % 2 == 0 else (("new", new), ("old", old))
        for which, function in order:
            t0 = time.process_time()
            for _ in range(per_block):
                function()
            times[which].append((time.process_time() - t0) / per_block)
    ratios = [n / o for o, n in zip(times["old"], times["new"], strict=True) if o > 0]
    old_us = 1e6 * statistics.median(times["old"])
    new_us = 1e6 * statistics.median(times["new"])
    print(f"{name}: old {old_us:.1f} us/{unit}, new {new_us:.1f} us/{unit}, "
          f"saved {old_us - new_us:.1f} us/{unit}; median ratio new/old "
          f"{statistics.median(ratios):.3f} ({ROUNDS} interleaved rounds of {per_block})")
    return {"old_us": old_us, "new_us": new_us, "ratio": statistics.median(ratios)}


# --- head ----------------------------------------------------------------------

def head() -> dict:
    import eventlet.wsgi

    from bridge import httphead

    class Conn:
        """Enough of a connection for http.server's parse_request."""

    def stdlib():
        handler = eventlet.wsgi.HttpProtocol.__new__(eventlet.wsgi.HttpProtocol)
        stream = io.BytesIO(HEAD)
        handler.raw_requestline = stream.readline()
        handler.rfile = eventlet.wsgi.FileObjectForHeaders(stream)
        handler.protocol_version = "HTTP/1.1"
        assert handler.parse_request()
        return handler.headers.get("Cookie")

    def lean():
        head, _ = httphead.split(HEAD)
        pairs = httphead.parse(head)[3]
        return next(v for n, v in pairs if n.lower() == "cookie")

    assert stdlib() == lean()
    return compare("head", stdlib, lean, 400, "request")


# --- redis-backed pieces ---------------------------------------------------------

class PrivateRedis:
    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="micro-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def seed(url: str, count: int) -> list[str]:
    """Sessions as PHP writes them (php serialize handler), ~1.3 KB each."""
    import redis

    client = redis.Redis.from_url(url)
    ids = [f"{i:032x}" for i in range(count)]
    filler = "x" * 1200
    for i, session_id in enumerate(ids):
        client.set(session_id, f'user_id|s:{len(str(i))}:"{i}";pad|s:1200:"{filler}";'.encode())
    return ids


def recheck(batch: int = 5) -> dict:
    from bridge import components
    from bridge.config import load
    from bridge.store import SessionStore, open_redis

    server = PrivateRedis()
    try:
        ids = seed(server.url, batch)
        authenticator = components.authenticator(
            load({}, environ={}), SessionStore(open_redis(server.url, 1.0), ""))

        def one_by_one():
            return [authenticator.identify(session_id) for session_id in ids]

        def together():
            return authenticator.identify_many(ids)

        assert [i.user for i in one_by_one()] == [i.user for i in together()]
        return compare(f"recheck of {batch} sessions", one_by_one, together, 40,
                       f"{batch} sessions")
    finally:
        server.stop()


def parser() -> dict:
    import redis
    from redis._parsers import _HiredisParser, _RESP3Parser
    from redis.utils import HIREDIS_AVAILABLE

    from bridge.store import SessionStore

    if not HIREDIS_AVAILABLE:
        print("parser: hiredis not installed; skipped")
        return {}
    server = PrivateRedis()
    try:
        ids = seed(server.url, 1)

        def store(parser_class):
            pool = redis.BlockingConnectionPool.from_url(
                server.url, max_connections=4, timeout=1.0, parser_class=parser_class,
                protocol=3)
            return SessionStore(redis.Redis(connection_pool=pool), "")

        pure, fast = store(_RESP3Parser), store(_HiredisParser)
        assert pure.get(ids[0]) == fast.get(ids[0])
        return compare("session GET reply parser (RESP3, pure Python -> hiredis)",
                       lambda: pure.get(ids[0]), lambda: fast.get(ids[0]), 100, "GET")
    finally:
        server.stop()


def batch() -> dict:
    """K handshakes' session GETs in the same turn of the event loop, each from its own
    greenlet: one pooled GET each (``_pooled_get``) against ``GetBatch`` (run alone,
    under eventlet's monkey patching, as the daemon runs)."""
    import eventlet
    import eventlet.event

    from bridge.store import SessionStore, open_redis

    server = PrivateRedis()
    out = {}
    try:
        ids = seed(server.url, 50)
        single = SessionStore(open_redis(server.url, 1.0), "")
        batched = SessionStore(open_redis(server.url, 1.0), "")
        batched.batch_gets(eventlet.spawn_n, eventlet.event.Event)
        for k in (1, 5, 20):
            def turn(store, k=k):
                threads = [eventlet.spawn(store.get, ids[i]) for i in range(k)]
                assert all(t.wait() is not None for t in threads)
            out[k] = compare(f"{k} concurrent session GETs (one by one -> batched)",
                             lambda turn=turn: turn(single), lambda turn=turn: turn(batched),
                             40, f"{k} GETs")
        return out
    finally:
        server.stop()


REQUEST = (b"GET /socket.io/?EIO=4&transport=polling&t=abc&sid=w00AbCdEfGhIjKlMnOpQ HTTP/1.1\r\n"
           b"Host: 127.0.0.1:40123\r\nCookie: PHPSESSID=0970380a272f099448c08da7b900108d\r\n"
           b"Accept: */*\r\nConnection: close\r\n\r\n")


def request() -> dict:
    """One request per TCP connection to each server, as a polling client without
    keep-alive sends them; an app answering like Engine.IO (4 headers, short body)."""
    import eventlet
    import eventlet.wsgi

    from bridge import httpserver

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain; charset=UTF-8"),
                                  ("Access-Control-Allow-Origin", "http://127.0.0.1"),
                                  ("Access-Control-Allow-Credentials", "true"),
                                  ("Content-Length", "2")])
        return [b"ok"]

    old_listener = eventlet.listen(("127.0.0.1", 0))
    new_listener = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(eventlet.wsgi.server, old_listener, app, log_output=False, debug=False,
                   capitalize_response_headers=False)
    server = httpserver.Server(new_listener, app, spawn=eventlet.spawn_n, sleep=eventlet.sleep,
                               max_connections=1000)
    eventlet.spawn(server.serve)

    def one(port):
        def call():
            with socket.create_connection(("127.0.0.1", port)) as sock:  # green: patched
                sock.sendall(REQUEST)
                data = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok"), data
        return call

    return compare("request", one(old_listener.getsockname()[1]),
                   one(new_listener.getsockname()[1]), 50, "request")


PIECES = {"head": head, "recheck": recheck, "parser": parser, "batch": batch,
          "request": request}
ALONE = ("batch", "request")  # run only when named: they monkey-patch with eventlet


def main(argv: list[str]) -> int:
    if any(name in ALONE for name in argv):
        import eventlet
        eventlet.monkey_patch()
    for name in argv or [p for p in PIECES if p not in ALONE]:
        PIECES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
