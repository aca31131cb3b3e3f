"""The Socket.IO server: who may connect, rooms, ``whoami``, ending sockets.

Authentication happens in the connect handler: a refusal raises
``ConnectionRefusedError(reason)``, which python-socketio sends to the client
as ``connect_error`` with ``message`` = the reason code. Origins are checked
by Engine.IO on the HTTP request itself, before this module sees anything.
The async mode is a parameter: this module never imports eventlet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import engineio.packet
import socketio
import socketio.packet

from bridge import logs, transport
from bridge.admission import LOCAL_PROXIES
from bridge.auth import (
    RATE_LIMITED,
    STORE_UNAVAILABLE,
    TOO_MANY_SOCKETS,
    Authenticator,
    Identity,
    Refused,
)
from bridge.events import Message
from bridge.history import ZERO, HistoryUnavailable
from bridge.lifecycle import REVOKED
from bridge.logs import session_tag
from bridge.metrics import Metrics
from bridge.ratelimit import HandshakeLimiter
from bridge.recovery import Plan, Recovery
from bridge.registry import Registry
from bridge.replay import Replayer
from bridge.rooms import IndexedManager

log = logs.get("sockets")

SESSION_ENDED = "session_ended"
RESYNC = "resync"
MAX_PACKET_BYTES = 100_000  # browsers only send small events (whoami)
EVENTS_PER_SECOND = 20  # per socket, burst 40; more is a flood and ends the socket


def user_room(user: str) -> str:
    return f"user:{user}"


def origin_policy(allowed: tuple[str, ...], any_origin: bool):
    """Engine.IO's ``cors_allowed_origins``: same origin, plus the listed ones."""
    if any_origin and "*" in allowed:
        return "*"
    if not allowed:
        return None  # Engine.IO's default: same origin only
    listed = frozenset(o.rstrip("/") for o in allowed)

    def is_allowed(origin: str, environ: dict) -> bool:
        return origin in listed or origin in _same_origins(environ)

    return is_allowed


def _same_origins(environ: dict) -> set[str]:
    """This request's own origin, also as a TLS-terminating proxy forwards it."""
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", "")
    forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
    return {f"{scheme}://{host}", f"{forwarded_scheme}://{forwarded_host}"}


def client_address(environ: dict) -> str:
    """The peer address; behind a local proxy, the last X-Forwarded-For hop."""
    remote = environ.get("REMOTE_ADDR", "")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded and remote in LOCAL_PROXIES:
        return forwarded.split(",")[-1].strip() or remote
    return remote


def _refuse(start_response, status: str, text: str):
    body = text.encode() + b"\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                            ("Connection", "close")])
    return [body]


def _declared_length(environ: dict) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_PACKET_BYTES + 1


class _ServerErrors:
    """``wsgi.errors`` for the transport: its chatter (e.g. "socket shutdown
    error" for every websocket the client closed first) goes to the debug log."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("transport: %s", text.strip())

    def flush(self) -> None:
        pass

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)


_SERVER_ERRORS = _ServerErrors()


class SocketLayer:
    """Owns the ``socketio.Server`` and the handlers the contract defines."""

    def __init__(self, *, async_mode: str, authenticator: Authenticator,
                 limiter: HandshakeLimiter, registry: Registry, metrics: Metrics,
                 max_sockets_per_user: int, cors_allowed_origins, websocket_compression: bool,
                 recovery: Recovery | None = None, replayer: Replayer | None = None,
                 cursor: Callable[[], str | None] = lambda: None,
                 on_first_socket: Callable[[str], None] = lambda session_id: None,
                 on_last_socket: Callable[[str], None] = lambda session_id: None,
                 on_rooms_entered: Callable[[str, Identity, tuple], None] = lambda *a: None,
                 on_rooms_left: Callable[[str], None] = lambda sid: None,
                 presence_of: Callable[[str], dict] = lambda room: {"error": "not_presence_room"},
                 transport_limiter: HandshakeLimiter | None = None):
        self.authenticator = authenticator
        self.limiter = limiter
        self.registry = registry
        self.metrics = metrics
        self.max_sockets_per_user = max_sockets_per_user
        self.websocket_compression = websocket_compression
        self.on_first_socket = on_first_socket
        self.on_last_socket = on_last_socket
        self.recovery = recovery
        self.replayer = replayer
        self.cursor = cursor
        self._pids: dict[str, str] = {}  # sid -> pid for its CONNECT reply
        self.on_rooms_entered = on_rooms_entered  # presence (bridge.roster)
        self.on_rooms_left = on_rooms_left
        self.presence_of = presence_of
        self.accepting = True
        self.event_budget = HandshakeLimiter(EVENTS_PER_SECOND)
        # Engine.IO sessions are opened before any Socket.IO connect (and so
        # before the handshake limit); bound them per address too, with room
        # for a retry per connect.
        self.transport_limiter = transport_limiter or HandshakeLimiter(2 * limiter.rate)
        # async_handlers=False: a socket's events run in its own reader, one at
        # a time, so a client flooding events is slowed by TCP, not by memory.
        self.sio = socketio.Server(
            async_mode=async_mode, cors_allowed_origins=cors_allowed_origins,
            cors_credentials=True, logger=False, engineio_logger=False,
            max_http_buffer_size=MAX_PACKET_BYTES, always_connect=False,
            async_handlers=False, client_manager=IndexedManager(),
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("whoami", self._on_whoami)
        self.sio.on("presence", self._on_presence)
        self.sio.on("*", self._on_other_event)

    def wsgi_app(self):
        app = socketio.WSGIApp(self.sio)

        def guarded(environ, start_response):
            """New Engine.IO sessions per address are limited; compression is refused."""
            if "sid=" not in environ.get("QUERY_STRING", "") and \
                    not self.transport_limiter.allow(client_address(environ)):
                self.metrics.connects.labels("refused", RATE_LIMITED).inc()
                return _refuse(start_response, "429 Too Many Requests",
                               "too many handshakes from this address")
            if _declared_length(environ) > MAX_PACKET_BYTES:
                # Refused here: Engine.IO would close the session and then wait
                # forever for a poller to drain it, holding this request.
                return _refuse(start_response, "413 Payload Too Large", "packet too large")
            environ["wsgi.errors"] = _SERVER_ERRORS
            if not self.websocket_compression:
                # Accepting permessage-deflate costs a zlib state per socket
                # (~90 KB) for events that are small anyway.
                environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            return app(environ, start_response)

        return guarded

    # --- handlers ---

    def _on_connect(self, sid: str, environ: dict, auth=None):
        remote = client_address(environ)
        try:
            identity = self._admit(environ, remote)
            plan = self._plan(auth, identity)
        except Refused as refusal:
            self._log_refusal(refusal, remote)
            raise socketio.exceptions.ConnectionRefusedError(refusal.reason) from None
        first = self.registry.add(sid, identity)
        self.metrics.connects.labels("accepted", "").inc()
        self.metrics.connections_open.set(len(self.registry))
        log.info("connect accepted", extra={"fields": {
            "user": identity.user, "session": session_tag(identity.session_id),
            "remote": remote, "transport": _transport(environ)}})
        if first:
            self.on_first_socket(identity.session_id)
        if plan is None or (plan.since is None and not plan.resync):
            self._join(sid, identity)
        else:  # after the CONNECT reply: replay (or resync), then join
            self.sio.start_background_task(self._catch_up, sid, identity, plan)
        if plan is not None:
            self._pids[sid] = plan.pid
            self.metrics.recoveries.labels("recovered" if plan.recovered else "new").inc()
        return True

    def _plan(self, auth, identity: Identity) -> Plan | None:
        if self.recovery is None:
            return None
        try:
            return self.recovery.plan(auth, identity.user)
        except HistoryUnavailable as exc:
            raise Refused(STORE_UNAVAILABLE, f"history: {exc}") from None

    def pid_of(self, sid: str) -> str | None:
        """The recovery pid for this socket's CONNECT reply (asked once)."""
        return self._pids.pop(sid, None)

    def _join(self, sid: str, identity: Identity) -> None:
        for room in _rooms_of(identity):
            self.sio.enter_room(sid, room)
        self.on_rooms_entered(sid, identity, (user_room(identity.user), *identity.rooms))

    def _catch_up(self, sid: str, identity: Identity, plan: Plan) -> None:
        still_open = lambda: self.registry.identity(sid) is identity  # noqa: E731
        if plan.resync:
            self.sio.emit(RESYNC, {"reason": "too_old"}, to=sid)
            self.metrics.resyncs.labels("too_old").inc()
        else:
            try:
                count = self.replayer.run(plan.since, identity.user, _rooms_of(identity),
                                          lambda m, p: self._send(m, p, sid), still_open)
            except HistoryUnavailable as exc:
                log.warning("replay failed; the client will reconnect", extra={"fields": {
                    "user": identity.user, "why": str(exc)}})
                self.close_transport_of(sid)
                return
            if count is None:
                return
            self.metrics.events_replayed.inc(count)
        if still_open():
            self._join(sid, identity)

    def _admit(self, environ: dict, remote: str) -> Identity:
        if not self.accepting:
            raise Refused("shutting_down")
        if not self.limiter.allow(remote):
            raise Refused(RATE_LIMITED)
        session_id = self.authenticator.session_id(environ.get("HTTP_COOKIE"))
        started = time.perf_counter()
        try:
            identity = self.authenticator.identify(session_id)
            if self.registry.count_of_user(identity.user) >= self.max_sockets_per_user:
                raise Refused(TOO_MANY_SOCKETS, f"user {identity.user}")
        except Refused as refusal:
            refusal.session_id = session_id  # for the log line, as a short hash
            raise
        finally:
            self.metrics.lookup_seconds.observe(time.perf_counter() - started)
        return identity

    def _log_refusal(self, refusal: Refused, remote: str) -> None:
        self.metrics.connects.labels("refused", refusal.reason).inc()
        fields = {"reason": refusal.reason, "remote": remote}
        if refusal.session_id:
            fields["session"] = session_tag(refusal.session_id)
        if refusal.detail:
            fields["detail"] = refusal.detail
        log.info("connect refused", extra={"fields": fields})

    def _on_disconnect(self, sid: str, *reason):
        self.event_budget.forget(sid)
        self._pids.pop(sid, None)
        identity = self.registry.remove(sid)
        if identity is None:
            return
        self.on_rooms_left(sid)
        self.metrics.connections_open.set(len(self.registry))
        if not self.registry.has_session(identity.session_id):
            self.on_last_socket(identity.session_id)

    def _on_whoami(self, sid: str, *args):
        identity = self.registry.identity(sid)
        if identity is None or not self._within_budget(sid):
            return None
        return {"user": identity.user_json, "session": identity.exposed}

    def _on_presence(self, sid: str, room=None, *args):
        """``{"room": R, "users": [...]}`` for a room this socket is in, else an error."""
        identity = self.registry.identity(sid)
        if identity is None or not self._within_budget(sid):
            return None
        if not isinstance(room, str) or room not in (user_room(identity.user), *identity.rooms):
            return {"error": "not_in_room"}
        return self.presence_of(room)

    def _on_other_event(self, event: str, sid: str, *args):
        """Events the daemon does not know are ignored, but count toward the budget."""
        self._within_budget(sid)

    def _within_budget(self, sid: str) -> bool:
        if self.event_budget.allow(sid):
            return True
        identity = self.registry.identity(sid)
        log.warning("event flood; socket dropped", extra={"fields": {
            "user": identity.user if identity else "?", "limit_per_second": EVENTS_PER_SECOND}})
        self.sio.disconnect(sid)
        return False

    # --- actions used by the rest of the daemon ---

    def end_session_sockets(self, sids: list[str], reason: str) -> None:
        """Tell each socket its session ended (``reason``), then disconnect it."""
        for sid in sids:
            if self.registry.identity(sid) is None:
                continue
            self.sio.emit(SESSION_ENDED, {"reason": reason}, to=sid)
            self.sio.disconnect(sid)
            self.metrics.sessions_ended.labels(reason).inc()

    def deliver(self, message: Message, position: str | None = None,
                skip: frozenset[str] = frozenset()) -> None:
        """Route one published message to this daemon's sockets (but those in ``skip``).

        Every event carries a position as its last argument (Socket.IO's
        recovery offset): its own, or for a raw PUBLISH (no position) the
        position the live tail has reached.
        """
        if message.disconnect_user is not None:
            user = str(message.disconnect_user)
            sids = [sid for sid in self.registry.sockets_of_user(user) if sid not in skip]
            self.end_session_sockets(sids, REVOKED)
            return
        target, kind = _target(message)
        self._send(message, position or self.cursor() or ZERO, target, skip)
        self.metrics.events_delivered.labels(kind).inc()

    def audience(self, message: Message) -> frozenset[str]:
        """The sockets that ``message`` would reach now."""
        if message.disconnect_user is not None:
            return frozenset(self.registry.sockets_of_user(str(message.disconnect_user)))
        return self._members(_target(message)[0])

    def _members(self, room: str | None) -> frozenset[str]:
        """The sockets in ``room`` (None: every socket)."""
        return frozenset(self.sio.manager.rooms.get("/", {}).get(room, ()))

    def _send(self, message: Message, position: str, to: str | None,
              skip: frozenset[str] = frozenset()) -> None:
        if not skip:
            self.sio.emit(message.event, (message.data, position), to=to)
            return
        # The retry of an event a failover lost: to the few sockets that came since
        # (python-socketio's skip_sid is a list, scanned once per socket of the room).
        for sid in self._members(to) - skip:
            self.sio.emit(message.event, (message.data, position), to=sid)

    def close_transport_of(self, sid: str) -> None:
        """Drop one socket's connection without a disconnect: its client reconnects."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        transport = self.sio.eio.sockets.pop(eio_sid, None) if eio_sid else None
        if transport is not None:
            transport.close(wait=False, abort=True)

    def emit_presence(self, room: str, payloads: list[dict]) -> int:
        """Send ``presence`` events, in order, to this daemon's sockets in ``room``.

        Each event is its own Socket.IO packet (SPEC 11), encoded once; a
        websocket gets all of them in one write (:func:`transport.send_packets`).
        Returns how many sockets were sent to.
        """
        engine = self.sio.eio.sockets
        targets = [engine[eio_sid] for _, eio_sid in self.sio.manager.get_participants("/", room)
                   if eio_sid in engine]
        if targets:
            transport.send_packets(targets, [_event_packet(self.sio, "presence", payload)
                                             for payload in payloads])
        return len(targets)

    def close_transports(self) -> None:
        """Drop every connection so that clients reconnect by themselves.

        No Socket.IO DISCONNECT and no Engine.IO CLOSE packet: clients take
        either as "the server does not want me back" and stay away. Aborting
        the transport reads as "transport close" to the official JS client
        and to python-socketio's, which then reconnect (to another node, or
        to the restarted daemon).
        """
        engine = self.sio.eio
        for eio_sid in list(engine.sockets):
            transport = engine.sockets.pop(eio_sid, None)
            if transport is not None:
                transport.close(wait=False, abort=True)


def _target(message: Message) -> tuple[str | None, str]:
    """The room an event goes to (None: every socket) and its kind for the metrics."""
    if message.user is not None:
        return user_room(str(message.user)), "user"
    if message.room is not None:
        return message.room, "room"
    return None, "all"


def _event_packet(sio: socketio.Server, event: str, data) -> engineio.packet.Packet:
    """One Socket.IO EVENT (default namespace, no ack) as the Engine.IO packet carrying it."""
    encoded = sio.packet_class(socketio.packet.EVENT, namespace="/", data=[event, data]).encode()
    return engineio.packet.Packet(engineio.packet.MESSAGE, encoded)


def _rooms_of(identity: Identity) -> frozenset[str]:
    return frozenset((user_room(identity.user), *identity.rooms))


def _transport(environ: dict) -> str:
    return "websocket" if "HTTP_UPGRADE" in environ else "polling"
