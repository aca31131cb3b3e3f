"""Every place session-bridge reaches into another library's private parts.

Each one is a debt. They hold for the versions ``setup.cfg`` allows (the
lowest and the newest are tested, see ``make check-lowest``), and
:func:`check` runs at start-up, before anything is patched, and stops the
daemon with a clear message when one of them is gone, instead of letting it
fail on the first connect. Only :mod:`bridge.runtime` imports this module (it is part of the
eventlet runtime, like ``runtime`` itself and ``cli``).

python-engineio
  1. ``engineio.socket.Socket.schedule_ping`` is replaced: the next ping
     comes from a hub timer instead of a sleeping greenlet per socket
     (7 KB less per idle socket, see bench/RESULTS.md).
  2. ``engineio.Server._async["websocket"]`` is replaced per server by
     :mod:`bridge.transport`'s websocket driver (:func:`install_websocket`).
  3. :mod:`bridge.transport` drives an Engine.IO socket through attributes
     of ``engineio.socket.Socket``: ``queue``, ``upgrading``, ``upgraded``,
     ``connected``, ``closed``, ``closing``, ``last_ping``, ``server``,
     ``sid``, and the server's ``sockets`` dict and ``reason`` enum.

python-socketio
  4. ``socketio.Server._send_packet`` is wrapped so that a CONNECT packet
     carries the connection-state-recovery ``pid`` (:func:`connect_with_pid`).
     ``bridge.rooms.IndexedManager`` replaces ``Manager.basic_disconnect``, so
     it clears the manager's ``pending_connect`` and ``pending_disconnect``
     itself (both new in python-socketio 5.18).

eventlet
  5. ``eventlet.websocket.RFC6455WebSocket._apply_mask`` is replaced by one
     integer XOR (only eventlet's own websocket uses it:
     ``websocket_compression`` on).
"""

from __future__ import annotations

import importlib.metadata
import time
import weakref

import engineio
import engineio.packet
import engineio.socket
import eventlet.hubs
import eventlet.websocket
import socketio

SOCKET_ATTRIBUTES = ("queue", "upgrading", "upgraded", "connected", "closed", "closing",
                     "last_ping", "server", "sid")


class PatchTargetMissing(RuntimeError):
    """A private attribute session-bridge depends on is gone (a library changed)."""


def check() -> None:
    """Fail loudly if any target listed in the module docstring is missing."""
    missing = [name for name, present in _targets() if not present]
    if missing:
        raise PatchTargetMissing(
            "installed library versions lack what session-bridge patches: "
            + ", ".join(missing) + f" (python-engineio {_version('python-engineio')}, "
            f"python-socketio {_version('python-socketio')}, eventlet {_version('eventlet')}); "
            "install the versions setup.cfg allows")


def _targets():
    yield "engineio.socket.Socket.schedule_ping", callable(
        getattr(engineio.socket.Socket, "schedule_ping", None))
    server = engineio.Server(async_mode="eventlet")
    yield "engineio.Server._async['websocket']", "websocket" in getattr(server, "_async", {})
    yield "engineio.Server.sockets", isinstance(getattr(server, "sockets", None), dict)
    yield "engineio.Server.reason.TRANSPORT_CLOSE", hasattr(
        getattr(server, "reason", None), "TRANSPORT_CLOSE")
    sock = engineio.socket.Socket(server, "check")
    for name in SOCKET_ATTRIBUTES:
        yield f"engineio.socket.Socket.{name}", hasattr(sock, name)
    manager = socketio.Manager()
    for name in ("pending_connect", "pending_disconnect"):
        yield f"socketio.Manager.{name}", isinstance(getattr(manager, name, None), dict)
    yield "socketio.Server._send_packet", callable(
        getattr(socketio.Server, "_send_packet", None))
    yield "eventlet.websocket.RFC6455WebSocket._apply_mask", hasattr(
        eventlet.websocket.RFC6455WebSocket, "_apply_mask")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def apply(unmask) -> None:
    """The process-wide patches (1 and 5); ``unmask`` is ``bridge.framing.unmask``."""
    engineio.socket.Socket.schedule_ping = _schedule_ping_on_timer
    eventlet.websocket.RFC6455WebSocket._apply_mask = staticmethod(unmask)


def install_websocket(engine, driver) -> None:
    """Patch 2: ``engine`` (an engineio.Server) opens websockets with ``driver``."""
    engine._async = {**engine._async, "websocket": driver}


def connect_with_pid(server, pid_of) -> None:
    """Patch 4: CONNECT packets of ``server`` carry ``pid_of(namespace sid)`` when it
    gives one (Socket.IO's connection state recovery reads it on the client)."""
    send = server._send_packet
    connect = socketio.packet.CONNECT

    def send_packet(eio_sid, pkt):
        if pkt.packet_type == connect and isinstance(pkt.data, dict) and "sid" in pkt.data:
            pid = pid_of(pkt.data["sid"])
            if pid is not None:
                pkt.data = {**pkt.data, "pid": pid}
        return send(eio_sid, pkt)

    server._send_packet = send_packet


def _schedule_ping_on_timer(sock) -> None:
    """Patch 1: Engine.IO's next ping from a hub timer, not a sleeping greenlet.

    Same behaviour as ``engineio.socket.Socket.schedule_ping`` (ping after
    ``ping_interval`` unless the socket closed meanwhile). The timer holds the
    socket weakly: a socket that closes before its next ping is freed at once,
    not ``ping_interval`` (25 s) later with its transport, connection and
    buffers (at 1,500 connects a second that was ~35,000 closed sockets kept
    alive, tens of MB; bench/RESULTS.md 22.5).
    """
    if sock.last_ping:
        sock.last_ping = None
        eventlet.hubs.get_hub().schedule_call_global(sock.server.ping_interval, _ping,
                                                     weakref.ref(sock))


def _ping(ref) -> None:
    sock = ref()
    if sock is not None and not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.send(engineio.packet.Packet(engineio.packet.PING))
