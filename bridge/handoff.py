"""A worker's side of ``--workers N``: its seat, and connections handed to the right worker.

The parent (:mod:`bridge.workers`) binds the listeners and starts each worker
with a *seat*: its index, the inherited descriptors (the Socket.IO listener,
a private admin listener, the shared :mod:`bridge.quota` table) and one unix
datagram socket per worker for passing connections.

Engine.IO's polling transport sends one session's requests over several TCP
connections, and any worker may accept each of them. So a worker stamps its
index into the Engine.IO session ids it creates (``w`` + two hex digits +
Engine.IO's own random id), and looks at the request line of each connection
it accepts (``MSG_PEEK``: nothing is consumed). A connection whose first
request names a session of another worker is passed to that worker with
``SCM_RIGHTS`` (:func:`socket.send_fds`) and closed here; the owner serves it
as if it had accepted it. A later request on a kept-alive connection that
names another worker's session (browsers and proxies may share one
connection between clients) is passed the same way, with the bytes of that
request already read sent along (:func:`pass_request`).

The async mode stays outside: ``spawn``, a queue, and waits for readiness
come from the runtime.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import time
from collections.abc import Callable

from bridge import httpserver, logs

log = logs.get("handoff")

ENVIRON = "SESSION_BRIDGE_WORKER"  # the seat, as JSON, in a worker's environment
PEEK_BYTES = 2048
PEEK_SECONDS = 10.0  # a connection that sends no request line within this is closed
MAX_PREFIX = 256 * 1024
_SID = re.compile(rb"[?&]sid=w([0-9a-f]{2})")


class Seat:
    """Where one worker sits: its index among ``workers`` and its inherited descriptors."""

    def __init__(self, *, index: int, workers: int, listen: int, admin: int, quota: int,
                 inbox: int, peers: list[int], parent: int):
        self.index, self.workers = index, workers
        self.listen, self.admin, self.quota = listen, admin, quota
        self.inbox, self.peers, self.parent = inbox, peers, parent

    def to_environ(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_environ(cls, environ=os.environ) -> Seat | None:
        text = environ.get(ENVIRON)
        return cls(**json.loads(text)) if text else None

    def fds(self) -> list[int]:
        return [self.listen, self.admin, self.quota, self.inbox, *self.peers]

    def orphaned(self) -> bool:
        """The parent is gone (killed): this worker stops by itself."""
        return os.getppid() != self.parent


def stamp_sids(engine, index: int) -> None:
    """Engine.IO session ids of ``engine`` (an engineio.Server) name this worker."""
    generate = engine.generate_id
    prefix = f"w{index:02x}"
    engine.generate_id = lambda: prefix + generate()


def request_bytes(environ: dict) -> bytes:
    """A parsed WSGI request as the bytes a client sent (head and body)."""
    target = environ.get("RAW_PATH_INFO") or environ.get("PATH_INFO", "/")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    # HTTP/1.1: only an HTTP/1.1 (or keep-alive) client sends a second request
    # on a connection.
    lines = [f"{environ['REQUEST_METHOD']} {target} HTTP/1.1"]
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    for name, value in environ.items():
        if name.startswith("HTTP_") and name != "HTTP_TRANSFER_ENCODING":
            lines.append(f"{name[5:].replace('_', '-').title()}: {value}")
    for name, header in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(name):
            lines.append(f"{header}: {environ[name]}")
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_PREFIX)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    if chunked:  # passed on with its length, read here
        body = environ["wsgi.input"].read(MAX_PREFIX)
        lines = [line for line in lines if not line.startswith("Content-Length:")]
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _datagram(fd: int):
    """One of the parent's datagram sockets, on a descriptor of this process's own."""
    return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM, 0, os.dup(fd))


def owner_of(request_head: bytes) -> int | None:
    """The worker a request's ``sid`` names, from its request line; None when none."""
    line = request_head.split(b"\r\n", 1)[0]
    found = _SID.search(line)
    return int(found.group(1), 16) if found else None


def route(listener, app, seat: Seat, runtime, passed: Callable[[], None]):
    """The daemon's one call: a listener and WSGI app that send connections and
    requests of other workers' sessions to them. ``runtime`` gives the async mode
    (``spawn``, ``sleep``, ``queue``, waits, ``adopt_connection``, ``peek_now``).
    Returns (router, app); the router is the listener to serve."""
    router = Router(listener, seat, spawn=runtime.spawn, sleep=runtime.sleep,
                    queue=runtime.queue(), wait_readable=runtime.wait_readable,
                    wait_writable=runtime.wait_writable, adopt=runtime.adopt_connection,
                    peek_now=runtime.peek_now, passed=passed)
    return router, router.wsgi(app)


class Router:
    """The listener the HTTP server accepts from: local connections, and the ones
    other workers pass here. ``accept()`` blocks in ``queue``."""

    def __init__(self, listener, seat: Seat, *, spawn, sleep, queue, wait_readable,
                 wait_writable, adopt: Callable[[int, bytes], object],
                 peek_now: Callable[[object, int], bytes | None],
                 passed: Callable[[], None] = lambda: None):
        self._listener = listener
        self.seat = seat
        self._spawn, self._queue = spawn, queue
        self._wait_readable, self._wait_writable = wait_readable, wait_writable
        self._adopt, self._sleep = adopt, sleep
        self._peek_now = peek_now
        self._passed = passed
        self._inbox = _datagram(seat.inbox)
        self._peers = {i: _datagram(fd) for i, fd in enumerate(seat.peers) if i != seat.index}
        self.closed = False
        self._spawn(self._accept_loop)
        self._spawn(self._inbox_loop)

    def accept(self):
        item = self._queue.get()
        if item is None:
            raise OSError(errno.EBADF, "listener closed")
        return item

    def close(self) -> None:
        self.closed = True
        self._queue.put(None)

    def __getattr__(self, name):
        return getattr(self._listener, name)

    # --- connections this worker accepted ---

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, addr = self._listener.accept()
            except OSError:
                if self.closed:
                    return
                self._sleep(0.01)  # EMFILE and the like: let the other greenlets run
                continue
            head = self._peek_now(conn, PEEK_BYTES)  # usually there already: no greenlet
            if head is not None and (not head or b"\r\n" in head or len(head) >= PEEK_BYTES):
                self._dispatch(conn, addr, head)
            else:
                self._spawn(self._route, conn, addr)

    def _route(self, conn, addr) -> None:
        self._dispatch(conn, addr, self._peek(conn))

    def _dispatch(self, conn, addr, head: bytes) -> None:
        owner = owner_of(head) if head else None
        if owner is None or owner == self.seat.index or owner not in self._peers:
            self._queue.put((conn, addr))
            return
        self.pass_connection(conn, owner, b"")

    def _peek(self, conn) -> bytes:
        """The start of the first request, left in the socket for the HTTP server."""
        deadline = time.monotonic() + PEEK_SECONDS
        head = b""
        while time.monotonic() < deadline:
            try:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                head = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
            except OSError:  # timed out or reset: the HTTP server sees that for itself
                return b""
            if not head or b"\r\n" in head or len(head) >= PEEK_BYTES:
                return head
            self._sleep(0.005)  # part of a request line: wait for the rest
        return head

    # --- a request on a kept-alive connection ---

    def wsgi(self, app):
        """``app``, except that a request naming another worker's session goes there,
        with its connection."""

        def routed(environ, start_response):
            query = environ.get("QUERY_STRING", "")
            owner = owner_of(b"?" + query.encode("latin-1")) if "sid=w" in query else None
            if owner is None or owner not in self._peers:
                return app(environ, start_response)
            prefix = request_bytes(environ)
            self.pass_connection(httpserver.take_connection(environ), owner, prefix)
            return []

        return routed

    # --- passing a connection to its owner ---

    def pass_connection(self, conn, owner: int, prefix: bytes) -> bool:
        """Send ``conn`` (and the request bytes already read from it) to ``owner``;
        this worker's descriptor is closed either way."""
        sent = False
        try:
            sent = self._send(self._peers[owner], prefix[:MAX_PREFIX], conn.fileno())
        finally:
            try:
                conn.close()
            except OSError:
                pass
        if sent:
            self._passed()
        return sent

    def _send(self, peer, prefix: bytes, fd: int) -> bool:
        deadline = time.monotonic() + PEEK_SECONDS
        while time.monotonic() < deadline:
            try:
                socket.send_fds(peer, [b"C" + prefix], [fd])
                return True
            except BlockingIOError:
                self._wait_writable(peer)
            except OSError as exc:
                log.warning("could not pass a connection to its worker",
                            extra={"fields": {"why": str(exc)}})
                return False
        return False

    # --- connections other workers pass here ---

    def _inbox_loop(self) -> None:
        while not self.closed:
            try:
                message, fds, _flags, _addr = socket.recv_fds(self._inbox, MAX_PREFIX + 1, 4)
            except BlockingIOError:
                self._wait_readable(self._inbox)
                continue
            except OSError:
                if self.closed:
                    return
                continue
            for fd in fds[1:]:
                os.close(fd)
            if fds:
                self._take(fds[0], message[1:])

    def _take(self, fd: int, prefix: bytes) -> None:
        try:
            conn = self._adopt(fd, prefix)
            addr = conn.getpeername()
        except OSError:
            return  # the client went away meanwhile
        self._queue.put((conn, addr))
