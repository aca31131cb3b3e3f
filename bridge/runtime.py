"""The eventlet runtime: everything the daemon needs from its async library.

``cli`` patches the standard library with eventlet before the daemon starts;
from then on this module (with :mod:`bridge.patches`, the private parts it
reaches into) is the only one that knows the async mode is eventlet. The
lifecycle in :mod:`bridge.daemon` gets an :class:`EventletRuntime` and uses
its ``sleep``, ``spawn``, listeners and servers; the socket layer gets the
``async_mode`` name; the websocket transport gets an :class:`EventletLoop`.
Moving to another async mode means another runtime class, not edits across
the package.
"""

from __future__ import annotations

import gc
import os
import socket

import eventlet
import eventlet.event
import eventlet.greenio
import eventlet.hubs
import eventlet.patcher
import eventlet.queue
import eventlet.wsgi

from bridge import framing, httpserver, patches, transport

_RealSocket = eventlet.patcher.original("socket").socket  # detects an fd's family
LISTEN_BACKLOG = 4096
MAX_CONNECTIONS = 100_000  # connections in an HTTP request at once (websockets not counted)


class WorkerSupport:
    """What a worker of ``--workers N`` needs from the async mode (see bridge.handoff)."""

    @staticmethod
    def adopt_listener(fd: int):
        """A listening socket inherited from the parent, as a green socket."""
        return eventlet.greenio.GreenSocket(_RealSocket(fileno=os.dup(fd)))

    @staticmethod
    def adopt_connection(fd: int, prefix: bytes = b""):
        """A connection another worker passed here; ``prefix``: its bytes already read."""
        real = _RealSocket(fileno=fd)
        if prefix:
            return _PrefixedSocket(real, prefix)
        return eventlet.greenio.GreenSocket(real)

    @staticmethod
    def queue():
        return eventlet.queue.LightQueue()

    @staticmethod
    def peek_now(conn, size: int):
        """What ``conn`` (a green socket) has received so far, left in place; None
        when nothing yet (no wait)."""
        try:
            return conn.fd.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    @staticmethod
    def wait_readable(sock) -> None:
        eventlet.hubs.trampoline(sock.fileno(), read=True)

    @staticmethod
    def wait_writable(sock) -> None:
        eventlet.hubs.trampoline(sock.fileno(), write=True)


class EventletRuntime(WorkerSupport):
    async_mode = "eventlet"

    def __init__(self):
        patches.check()

    @staticmethod
    def sleep(seconds: float) -> None:
        eventlet.sleep(seconds)

    @staticmethod
    def spawn(function, *args, **kwargs):
        return eventlet.spawn(function, *args, **kwargs)

    @staticmethod
    def start(function, *args) -> None:
        """Run ``function`` in a greenlet of its own once the current ones yield."""
        eventlet.spawn_n(function, *args)

    @staticmethod
    def waiter():
        """A one-shot hand-over between greenlets: ``send(value)`` once, ``wait()``."""
        return eventlet.event.Event()

    @staticmethod
    def pause() -> None:
        """Let the other greenlets run."""
        eventlet.sleep(0)

    def tune_for_many_sockets(self) -> None:
        """Process-wide settings measured in bench/RESULTS.md (each with what it bought)."""
        patches.apply(framing.unmask)
        # Everything imported so far lives as long as the process: keep it out of
        # every future collection. Young collections every 5,000 allocations
        # instead of 700 (connect CPU -4 %, polling -7 %); the older generations
        # keep their default ratios, so closed sockets' reference cycles are still
        # freed about every 500,000 allocations. (100,000/50/100 saved more, but
        # full collections then almost never ran and RSS grew 13 MB a minute
        # under churn; see bench/RESULTS.md.)
        gc.set_threshold(5_000, 10, 10)
        gc.freeze()

    def attach(self, sio, *, max_message: int, own_websocket: bool, pid_of) -> None:
        """Give a ``socketio.Server`` recovery pids in its CONNECT replies and,
        with ``own_websocket``, bridge.transport's websocket."""
        if own_websocket:
            patches.install_websocket(sio.eio, transport.driver(EventletLoop(), max_message))
        patches.connect_with_pid(sio, pid_of)

    @staticmethod
    def listen(host: str, port: int):
        """The Socket.IO listener, sized for tens of thousands of sockets."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        # No SO_REUSEPORT: a second daemon on the same port must fail, not share it.
        listener = eventlet.listen((host, port), family=family, backlog=LISTEN_BACKLOG,
                                   reuse_port=False)
        # Accepted sockets inherit TCP_NODELAY on Linux; without it small
        # Engine.IO frames wait for delayed ACKs (tens of ms per round trip).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return listener

    @staticmethod
    def listen_admin(port: int):
        return eventlet.listen(("127.0.0.1", port), reuse_port=False)

    def serve(self, listener, app):
        """Serve the Socket.IO app on ``listener`` (any object with ``accept()``) with
        bridge.httpserver: a greenlet per connection, no pool (bench/RESULTS.md 21)."""
        server = httpserver.Server(listener, app, spawn=eventlet.spawn_n, sleep=eventlet.sleep,
                                   max_connections=MAX_CONNECTIONS)
        return self.spawn(server.serve)

    def serve_admin(self, listener, app):
        return self.spawn(eventlet.wsgi.server, listener, app, log_output=False, debug=False)


class _PrefixedSocket(eventlet.greenio.GreenSocket):
    """A green socket whose first reads return bytes another worker already read."""

    def __init__(self, real, prefix: bytes):
        super().__init__(real)
        self._prefix = prefix

    def recv(self, bufsize, flags=0):
        if self._prefix and not flags:
            data, self._prefix = self._prefix[:bufsize], self._prefix[bufsize:]
            return data
        return super().recv(bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        if self._prefix and not flags:
            size = min(nbytes or len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        return super().recv_into(buffer, nbytes, flags)


class EventletLoop:
    """``transport.Loop`` on eventlet's hub."""

    def __init__(self):
        self.hub = eventlet.hubs.get_hub()

    def on_readable(self, fileno: int, callback):
        return self.hub.add(self.hub.READ, fileno, callback, _no_throwback, None)

    def on_writable(self, fileno: int, callback):
        return self.hub.add(self.hub.WRITE, fileno, callback, _no_throwback, None)

    def cancel(self, handle) -> None:
        self.hub.remove(handle)

    def call_later(self, seconds: float, function, *args) -> None:
        self.hub.schedule_call_global(seconds, function, *args)

    def spawn(self, function, *args) -> None:
        eventlet.spawn_n(function, *args)


def _no_throwback(*args) -> None:
    pass
