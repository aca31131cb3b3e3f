"""The first gate: TCP connections per address, decided right after ``accept()``.

A flooding address must not cost the other clients their connect latency.
Refusing it at the HTTP or Socket.IO level still pays for the HTTP parse, a
greenlet and a response (~0.23 ms each); here an over-rate connection costs a
dictionary look-up and a close. The connection is reset (``SO_LINGER`` 0):
the client sees "connection reset" at once and the server keeps no TIME_WAIT.

Peers that are a local reverse proxy (127.0.0.1, ::1) are never limited here:
all users arrive from them, and their real address is only known from
``X-Forwarded-For`` once the request is read; the per-address limits further
in apply to that address instead.

The async mode stays outside: the wrapped listener and the ``pause`` that
lets other greenlets run between refusals come from the caller.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

from bridge import logs
from bridge.ratelimit import HandshakeLimiter

log = logs.get("admission")

LOCAL_PROXIES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
CONNECTIONS_PER_HANDSHAKE = 4  # polling + long-poll + upgrade, with room for a retry
YIELD_EVERY = 16  # refusals in a row before the accept loop lets others run
LOG_EVERY_SECONDS = 10.0  # per address: one line, then a count
_RESET = struct.pack("ii", 1, 0)


class GatedListener:
    """A listening socket whose ``accept()`` only returns connections within the rate.

    ``handshake_rate`` is the per-address handshake limit; connections may
    come at :data:`CONNECTIONS_PER_HANDSHAKE` times that rate (0: no limit).
    """

    def __init__(self, listener, handshake_rate: float, *, pause: Callable[[], None],
                 refused: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, limiter=None):
        self._listener = listener
        # ``limiter``: a shared one with --workers N (same rate, counted daemon-wide)
        self._limiter = limiter or HandshakeLimiter(
            CONNECTIONS_PER_HANDSHAKE * handshake_rate, clock=clock)
        self._pause = pause
        self._refused = refused
        self._clock = clock
        self._logged: dict[str, tuple[float, int]] = {}

    def accept(self):
        in_a_row = 0
        while True:
            conn, addr = self._listener.accept()
            host = addr[0] if isinstance(addr, tuple) else ""
            if host in LOCAL_PROXIES or not host or self._limiter.allow(host):
                return conn, addr
            self._reset(conn)
            self._refused()
            self._note(host)
            in_a_row += 1
            if in_a_row % YIELD_EVERY == 0:
                self._pause()

    @staticmethod
    def _reset(conn) -> None:
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            conn.close()
        except OSError:
            pass

    def _note(self, host: str) -> None:
        """Log the first refusal of an address, then at most one line per interval."""
        now = self._clock()
        since, count = self._logged.get(host, (0.0, 0))
        if now - since < LOG_EVERY_SECONDS:
            self._logged[host] = (since, count + 1)
            return
        if len(self._logged) > 10_000:
            self._logged = {h: v for h, v in self._logged.items()
                            if now - v[0] < LOG_EVERY_SECONDS}
        self._logged[host] = (now, 0)
        log.warning("connections refused at accept: over the per-address rate",
                    extra={"fields": {"remote": host, "refused_since_last_line": count + 1,
                                      "limit_per_second": self._limiter.rate}})

    def __getattr__(self, name):
        # getsockname, family, close, setsockopt, fileno: the listener's own.
        return getattr(self._listener, name)
