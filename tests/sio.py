"""python-socketio clients for the tests, with deadline-bound waits for what they receive."""

from __future__ import annotations

import threading
import time

import engineio
import socketio


class Refused(Exception):
    """The daemon refused the connect; ``reason`` is the connect_error message."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


SERVER_EVENTS = ("session_ended", "resync", "presence")  # the daemon's own: no position


class Conn:
    """One connected client and everything it received.

    Published events carry their history position as a trailing argument
    (Socket.IO's recovery offset); ``received`` keeps (event, data) and
    ``positions`` the position of each published event, in order.
    """

    def __init__(self, client: socketio.Client):
        self.client = client
        self.received: list[tuple[str, object]] = []
        self.positions: list[str] = []
        self.disconnects: list[object] = []
        self._cond = threading.Condition()

    def _record(self, event, *args):
        with self._cond:
            if event not in SERVER_EVENTS and len(args) >= 2:
                *args, position = args
                self.positions.append(position)
            self.received.append((event, args[0] if args else None))
            self._cond.notify_all()

    def _disconnected(self, *reason):
        with self._cond:
            self.disconnects.append(reason[0] if reason else None)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0, what: str = ""):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out waiting for {what}; got {self.received}")
                self._cond.wait(left)

    def events(self, name: str) -> list:
        return [data for event, data in self.received if event == name]

    def wait_event(self, name: str, timeout: float = 5.0, count: int = 1) -> list:
        return self.wait_for(lambda: len(self.events(name)) >= count and self.events(name),
                             timeout, f"{count} x {name!r}")

    def wait_disconnect(self, timeout: float = 5.0):
        return self.wait_for(lambda: self.disconnects or not self.client.connected and ["?"],
                             timeout, "disconnect")

    def whoami(self, timeout: float = 5.0):
        return self.client.call("whoami", timeout=timeout)

    @property
    def connected(self) -> bool:
        return self.client.connected


class _InOrderEngineIO(engineio.Client):
    """Hands each message on in the thread that read it, in arrival order.

    python-engineio's client starts a thread per message, so on a busy machine
    two events can reach the handlers swapped, which would read as the daemon
    breaking publish order."""

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)

    def disconnect(self, abort=False, reason=None):
        """A server's DISCONNECT is now handled in the reading thread, which cannot
        wait for itself to end (it ends once this returns)."""
        if self.read_loop_task is threading.current_thread():
            abort = True
        return super().disconnect(abort=abort, reason=reason)


class _InOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return _InOrderEngineIO


class Clients:
    """Opens clients and closes them all at teardown."""

    def __init__(self):
        self.open: list[Conn] = []

    def connect(self, url: str, cookie: str | None = None, transport: str = "websocket",
                headers: dict | None = None, reconnection: bool = False,
                timeout: float = 5.0, auth: dict | None = None) -> Conn:
        client = _InOrderClient(reconnection=reconnection, reconnection_delay=0.2,
                                reconnection_delay_max=0.5, request_timeout=timeout)
        conn = Conn(client)
        errors = []
        client.on("*", conn._record)
        client.on("connect_error", lambda data=None: errors.append(data))
        client.on("disconnect", conn._disconnected)
        all_headers = dict(headers or {})
        if cookie is not None:
            all_headers["Cookie"] = cookie
        self.open.append(conn)
        transports = ["polling", "websocket"] if transport == "upgrade" else [transport]
        try:
            client.connect(url, headers=all_headers, transports=transports,
                           wait_timeout=timeout, auth=auth)
        except socketio.exceptions.ConnectionError as exc:
            reason = errors[-1] if errors else str(exc)
            if isinstance(reason, dict):
                reason = reason.get("message", reason)
            raise Refused(reason) from None
        return conn

    def refusal(self, url: str, cookie: str | None = None, **kwargs) -> str:
        try:
            self.connect(url, cookie, **kwargs)
        except Refused as exc:
            return exc.reason
        raise AssertionError("the connect was accepted")

    def close(self):
        for conn in self.open:
            try:
                conn.client.shutdown()  # also stops a reconnection in progress
            except Exception:
                pass
        self.open.clear()
