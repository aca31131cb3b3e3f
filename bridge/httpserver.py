"""The Socket.IO listener's HTTP/1.1 server: one greenlet per connection, and little else.

A polling connect is four or five HTTP requests, most on a TCP connection
of their own. eventlet.wsgi spent about a third of such a connect's CPU on
its own per-connection and per-request work (bench/RESULTS.md 18.6): a
protocol object with buffered file objects, the full WSGI environ, a
response wrapper, a ``GreenPool`` and a link per connection. Here a
connection is one function running in one greenlet (``spawn``, from the
runtime: this module knows no async library and uses blocking socket calls
on whatever sockets the listener gives). It reads the head with ``recv``
(:mod:`bridge.httphead`), builds the environ with what python-engineio,
python-socketio and bridge/ read, calls the app, and sends status line,
headers and body with one ``sendall``.

HTTP/1.1 connections stay open unless the client or the app says
``Connection: close``; HTTP/1.0 ones only with ``Connection: keep-alive``.
Bodies come by Content-Length or chunked (:mod:`bridge.httpbody`); a body
the app left unread is read and dropped before the next request, except
after a 4xx/5xx answer, which closes the connection instead (a refused
upload is not read to its end). An app that raises gets a 500 and the
connection is closed.

The websocket transport takes the connection over after its 101
(:func:`take_connection`): the greenlet then ends and nothing here keeps a
reference to it. An app that answers on the socket itself without
``start_response`` (eventlet's own websocket, with ``websocket_compression``)
has its connection closed when it returns.

Stop: when ``accept`` fails for good (a worker's router raises once the
daemon closed it), connections waiting for their next request are shut
down, and the ones in a request close after answering it. A green
listener closed by another greenlet does not wake its ``accept``: new
connections are refused and the ones open are served until the process
ends, as under eventlet.wsgi.
"""

from __future__ import annotations

import errno
import socket
import sys
import time
from urllib.parse import unquote

from bridge import httpbody, httphead, logs

log = logs.get("httpserver")

TAKE = "bridge.httpserver.take"  # environ: call it to take the connection over
READ_SIZE = 4096  # per recv of a head; a head of a browser's request fits
RETRY_ACCEPT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                          errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR,
                          errno.EAGAIN})
_PER_REQUEST = (TAKE, "wsgi.input", "eventlet.input")  # dropped from the environ after it
_KEEP, _CLOSE, _TAKEN = range(3)
_BODYLESS = frozenset({204, 304})
_MAX_NAMES = 1024  # header names remembered with their environ key


def take_connection(environ: dict):
    """The request's connection, which the server then neither answers nor closes."""
    return environ[TAKE]()


class Server:
    """Serves ``app`` on the connections ``listener.accept()`` returns."""

    def __init__(self, listener, app, *, spawn, sleep, max_connections: int):
        self._listener = listener
        self._app = app
        self._spawn = spawn  # spawn(function, *args): run it in a greenlet of its own
        self._sleep = sleep
        self._max = max_connections
        self.open = 0  # connections with a greenlet here (not those taken over)
        self.stopping = False
        self._idle: set = set()  # connections waiting for a request: shut down at stop
        name = listener.getsockname()
        self._base = {
            "SCRIPT_NAME": "", "SERVER_NAME": str(name[0]), "SERVER_PORT": str(name[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        self._keys: dict[str, str | None] = {}
        self._date = (0, "")

    def serve(self) -> None:
        """Accept until the listener is closed, then stop (see the module docstring)."""
        while True:
            try:
                conn, addr = self._listener.accept()
            except OSError as exc:
                if exc.errno in RETRY_ACCEPT:
                    self._sleep(0.01)  # out of descriptors and the like: let others run
                    continue
                break
            self._spawn(self._connection, conn, addr)
            while self.open >= self._max:
                self._sleep(0.01)
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        for conn in list(self._idle):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- a connection ---

    def _connection(self, conn, addr) -> None:
        self.open += 1
        outcome = _CLOSE
        try:
            conn.settimeout(None)  # a worker's router may have peeked with a timeout
            peer = (str(addr[0]), str(addr[1])) if isinstance(addr, tuple) else ("", "")
            buffer = b""
            outcome = _KEEP
            while outcome == _KEEP and not self.stopping:
                outcome, buffer = self._next_request(conn, peer, buffer)
        except OSError:
            pass  # the client went away
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            self.open -= 1
            if outcome != _TAKEN:
                _close(conn)

    def _next_request(self, conn, peer, buffer: bytes):
        self._idle.add(conn)
        try:
            found = self._read_head(conn, buffer)
        except httphead.BadHead as bad:
            return self._refuse(conn, bad.status, bad.reason)
        finally:
            self._idle.discard(conn)
        if found is None:
            return _CLOSE, b""
        head, buffer = found
        try:
            method, target, version, pairs = httphead.parse(head)
            environ = self._environ(method, target, version, pairs, peer)
            body = _body(conn, buffer, environ, version)
        except httphead.BadHead as bad:
            return self._refuse(conn, bad.status, bad.reason)
        return self._respond(conn, environ, body, method, version)

    @staticmethod
    def _read_head(conn, buffer: bytes):
        while True:
            if buffer[:1] in (b"\r", b"\n"):
                buffer = buffer.lstrip(b"\r\n")  # RFC 9112 2.2: blank lines before a request
            found = httphead.split(buffer)
            if found is not None:
                return found
            chunk = conn.recv(READ_SIZE)
            if not chunk:
                return None
            buffer += chunk

    def _environ(self, method: str, target: str, version: str, pairs, peer) -> dict:
        path, _, query = target.partition("?")
        environ = self._base.copy()
        environ["REQUEST_METHOD"] = method
        environ["RAW_PATH_INFO"] = path
        environ["PATH_INFO"] = unquote(path, encoding="latin-1") if "%" in path else path
        environ["QUERY_STRING"] = query
        environ["SERVER_PROTOCOL"] = version
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = peer
        keys = self._keys
        for name, value in pairs:
            key = keys.get(name, "")
            if key == "":
                key = _environ_key(name)
                if len(keys) < _MAX_NAMES:
                    keys[name] = key
            if key is None:
                continue  # a name with "_" would pass for one with "-": dropped
            if key in environ:
                if key == "CONTENT_LENGTH" and environ[key] != value:
                    raise httphead.BadHead(400, "Bad Request")  # two lengths: smuggling
                if key != "CONTENT_LENGTH":
                    environ[key] += "," + value
            else:
                environ[key] = value
        return environ

    # --- the answer ---

    def _respond(self, conn, environ: dict, body, method: str, version: str):
        taken = []

        def take():
            taken.append(True)
            return conn

        environ["wsgi.input"] = environ["eventlet.input"] = body
        environ[TAKE] = take
        response = _Response()
        try:
            try:
                result = self._app(environ, response.start)
                try:
                    content = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            finally:  # python-socketio keeps a connect's environ as long as its socket
                for key in _PER_REQUEST:
                    environ.pop(key, None)
        except Exception:
            log.exception("the app failed on a request",
                          extra={"fields": {"path": environ.get("PATH_INFO")}})
            if taken:
                return _TAKEN, b""
            self._send(conn, "500 Internal Server Error", [], b"", False, method)
            return _CLOSE, b""
        if taken:
            return _TAKEN, b""
        if response.status is None:
            return _CLOSE, b""  # the app answered on the connection itself
        keep = _keep_alive(environ, version) and not self.stopping and not body.continue_owed
        if keep and not body.finished and response.status[:1] in "45":
            keep = False  # refused with its body unread (413, ...): close, do not read it all
        keep = self._send(conn, response.status, response.headers,
                          response.written + content, keep, method, version == "HTTP/1.0")
        if not keep:
            return _CLOSE, b""
        rest = body.rest()
        return (_CLOSE, b"") if rest is None else (_KEEP, rest)

    def _send(self, conn, status: str, headers, content: bytes, keep: bool,
              method: str, say_keep_alive: bool = False) -> bool:
        """Send the whole response; whether the connection stays open."""
        lines = ["HTTP/1.1 ", status, "\r\n"]
        length = date = said_close = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length":
                length = True
            elif lowered == "connection" and "close" in value.lower():
                keep, said_close = False, True
            elif lowered == "date":
                date = True
            lines.append(f"{name}: {value}\r\n")
        code = int(status[:3])
        bodyless = code in _BODYLESS or code < 200
        if not length and not bodyless:
            lines.append(f"Content-Length: {len(content)}\r\n")
        if not date:
            lines.append(self._date_line())
        if not keep and not said_close:
            lines.append("Connection: close\r\n")
        elif say_keep_alive:  # HTTP/1.0 closes unless told otherwise
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        conn.sendall(head if bodyless or method == "HEAD" else head + content)
        return keep

    def _refuse(self, conn, status: int, reason: str):
        try:
            self._send(conn, f"{status} {reason}", [], b"", False, "GET")
        except OSError:
            pass
        return _CLOSE, b""

    def _date_line(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
            self._date = (now, f"Date: {stamp}\r\n")
        return self._date[1]


class _Response:
    """What the app gave ``start_response`` (and the old-style ``write``)."""

    __slots__ = ("status", "headers", "written")

    def __init__(self):
        self.status = None
        self.headers = ()
        self.written = b""

    def start(self, status: str, headers, exc_info=None):
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        self.written += data


def _environ_key(name: str) -> str | None:
    if "_" in name:
        return None
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def _body(conn, buffer: bytes, environ: dict, version: str):
    length = environ.get("CONTENT_LENGTH")
    coding = environ.get("HTTP_TRANSFER_ENCODING")
    if coding is not None:
        if length is not None or coding.strip().lower() != "chunked":
            raise httphead.BadHead(400, "Bad Request")
    elif length is not None and not (length.isascii() and length.isdigit()):
        raise httphead.BadHead(400, "Bad Request")
    expect = version == "HTTP/1.1" and \
        environ.get("HTTP_EXPECT", "").lower() == "100-continue"
    return httpbody.Body(conn, buffer, int(length or 0), coding is not None, expect)


def _keep_alive(environ: dict, version: str) -> bool:
    connection = environ.get("HTTP_CONNECTION")
    if connection is None:
        return version == "HTTP/1.1"
    tokens = [token.strip() for token in connection.lower().split(",")]
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


def _close(conn) -> None:
    try:
        conn.close()
    except OSError:
        pass
