"""Engine.IO's websocket transport, with no greenlet held by an idle socket.

python-socketio over eventlet keeps two greenlets per websocket for its whole
life: one blocked reading, one blocked on the send queue. Their saved stacks
were most of the daemon's memory per idle socket, and every event sent went
through a queue and a context switch per socket. Here a websocket is a small
object: when the client sends something, the loop's readiness callback starts
a short-lived greenlet that reads what arrived, hands the packets to
Engine.IO and ends; packets for the client are framed and written to the
socket straight away (a write the kernel cannot take yet waits in a buffer,
flushed when the socket is writable).

It replaces ``engineio``'s ``websocket`` driver of one ``engineio.Server``
(:func:`driver`, installed by ``bridge.runtime``), for both a direct
websocket and an upgrade from polling. The Engine.IO protocol stays
engineio's (``Socket.receive``, ``send``, ``close``, its ping checks); RFC 6455
framing is ``bridge.framing``'s; this module owns the socket and how much of
one client's input is handled before other sockets get their turn.
Compression is not negotiated (the daemon uses eventlet's own websocket when
``websocket_compression`` is on).

The async mode stays outside: a :class:`Loop` (see ``runtime.EventletLoop``)
gives readiness callbacks and spawning; the connection is taken from the
HTTP server after the 101 (:func:`bridge.httpserver.take_connection`).
The Engine.IO attributes it drives are listed in :mod:`bridge.patches`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
from typing import Protocol

import engineio.exceptions
import engineio.packet

from bridge import httpserver, logs
from bridge.framing import (
    BAD_DATA,
    BINARY,
    CLOSE,
    NORMAL,
    PING,
    PONG,
    PROTOCOL_ERROR,
    TEXT,
    FrameError,
    Reader,
    close_frame,
    frame,
)

log = logs.get("transport")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
READ_CHUNK = 65536  # bytes read per wake-up; more waits for the next turn
MAX_PENDING_BYTES = 4 << 20  # past the kernel's buffers; a client reading nothing is dropped
CLOSE_FLUSH_SECONDS = 5.0  # a closing socket's last frames get this long to leave
UPGRADE_SECONDS = 5.0  # from polling: the probe and the UPGRADE packet must come by then
MAX_FRAMES_PER_TURN = 64  # then other sockets run before this one's next frames

_PROBE, _UPGRADE, _OPEN, _CLOSED = range(4)


class Loop(Protocol):
    """What the transport needs from the async mode."""

    def on_readable(self, fileno: int, callback): ...  # once, returns a handle
    def on_writable(self, fileno: int, callback): ...
    def cancel(self, handle) -> None: ...
    def call_later(self, seconds: float, function, *args) -> None: ...
    def spawn(self, function, *args) -> None: ...


def driver(loop: Loop, max_message: int):
    """Engine.IO's ``websocket`` driver for this transport (see ``patches.install_websocket``)."""

    def websocket(handler, server):
        return _Handshake(handler.__self__, loop, max_message)

    return websocket


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode()


class _Handshake:
    """The HTTP side: validate the upgrade, answer 101, hand the socket to a :class:`WebSocket`."""

    def __init__(self, eio_socket, loop: Loop, max_message: int):
        self.eio = eio_socket
        self.loop = loop
        self.max_message = max_message

    def __call__(self, environ: dict, start_response):
        connection = [p.strip() for p in environ.get("HTTP_CONNECTION", "").lower().split(",")]
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
        if "upgrade" not in connection or environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return _http_error(start_response, "400 Bad Request")
        if environ.get("HTTP_SEC_WEBSOCKET_VERSION") not in ("13", "8"):
            return _http_error(start_response, "426 Upgrade Required",
                               [("Sec-WebSocket-Version", "13")])
        if not _valid_key(key):
            return _http_error(start_response, "400 Bad Request")
        sock = httpserver.take_connection(environ)
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + accept_key(key).encode() + b"\r\n\r\n")
        WebSocket(self.eio, sock, self.loop, self.max_message).start()
        return []


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _http_error(start_response, status: str, headers=()):
    start_response(status, [("Connection", "close"), *headers])
    return []


# One fan-out hands the same packet to every socket: frame it once.
_last_packet = None
_last_frame = b""


def _frame_of(pkt) -> bytes:
    global _last_packet, _last_frame
    if pkt is not _last_packet:
        _last_frame, _last_packet = _frame(pkt), pkt
    return _last_frame


def _frame(pkt) -> bytes:
    encoded = pkt.encode()
    return frame(TEXT, encoded.encode()) if isinstance(encoded, str) else frame(BINARY, encoded)


def send_packets(eio_sockets, packets) -> None:
    """Send Engine.IO ``packets``, in order, each its own frame, to every one of ``eio_sockets``.

    The frames are made once for all sockets and, on this transport, written
    to each socket in one send (several frames back to back), without
    Engine.IO's per-packet path. A socket that is not on this transport
    (polling, an upgrade in progress, eventlet's websocket) gets them from
    Engine.IO one by one, as any other packet.
    """
    data = b"".join(_frame(pkt) for pkt in packets)
    for eio in eio_sockets:
        ws = eio.queue
        if type(ws) is WebSocket and ws.state == _OPEN:
            ws._write(data)
        elif not eio.closed:
            for pkt in packets:
                eio.send(pkt)


class WebSocket:
    """One client's websocket; also its Engine.IO socket's send queue.

    Engine.IO calls ``queue.put(packet)`` to send and ``queue.put(None)`` to
    close; this object takes that role (``put``, ``join``, ``task_done``).
    """

    __slots__ = ("eio", "sock", "fd", "fileno", "loop", "state", "reader", "backlog", "pong",
                 "outbuf", "reading", "writing")

    def __init__(self, eio_socket, sock, loop: Loop, max_message: int):
        self.eio = eio_socket
        self.sock = sock  # the async mode's socket object; keeps the descriptor open
        self.fd = getattr(sock, "fd", sock)  # the non-blocking OS socket
        self.fileno = sock.fileno()
        self.loop = loop
        self.reader = Reader(max_message)
        self.backlog = False  # frames of the last read are still to be handled
        self.pong = None  # the payload of the last ping not answered yet
        self.outbuf = None
        self.reading = self.writing = None
        self.state = _PROBE if eio_socket.connected else _OPEN

    def start(self) -> None:
        eio = self.eio
        if self.state == _PROBE:
            eio.upgrading = True  # Engine.IO holds packets back until the upgrade
            self.loop.call_later(UPGRADE_SECONDS, self._upgrade_overdue)
        else:
            eio.connected = eio.upgraded = True
            self._take_queue()
        self._park()

    # --- Engine.IO's queue ---

    def put(self, pkt, block=True, timeout=None) -> None:
        if pkt is None:
            self._close(NORMAL)
        elif self.state != _CLOSED:
            self._write(_frame_of(pkt))

    def join(self) -> None:
        pass

    def task_done(self) -> None:
        pass

    def get(self, block=True, timeout=None):
        return None  # nothing is queued here; None reads as "closed" to a poller

    def _take_queue(self) -> None:
        """Become the Engine.IO socket's queue, sending what waited in the old one."""
        old, self.eio.queue = self.eio.queue, self
        while True:
            try:
                pkt = old.get(block=False)
            except Exception:  # noqa: BLE001 - the queue class's own Empty
                break
            self.put(pkt)

    # --- reading ---

    def _park(self) -> None:
        # Never after _shut(): the descriptor's number may already be another socket's.
        if self.state != _CLOSED and self.reading is None and self.sock is not None:
            self.reading = self.loop.on_readable(self.fileno, self._readable)

    def _readable(self, fileno=None) -> None:
        """In the loop's own context: only start a reader, never block here."""
        if self.reading is not None:
            self.loop.cancel(self.reading)  # a readiness callback fires until cancelled
            self.reading = None
        self.loop.spawn(self._read)

    def _read(self) -> None:
        """Read once (unless frames of the last read wait), handle a turn's worth of frames."""
        if self.state == _CLOSED or self.sock is None:
            return
        if not self.backlog and not self._receive():
            return
        try:
            self.backlog = self._handle_frames()
        except FrameError as exc:
            log.debug("websocket closed: %s", exc)
            self._close(exc.code, lost=True)
            return
        self._answer_ping()
        if self.backlog and self.state != _CLOSED:
            self.loop.spawn(self._read)  # the rest after the other sockets' turn
        else:
            self._park()

    def _receive(self) -> bool:
        """Feed what arrived to the reader; False when there is nothing to handle."""
        try:
            data = self.fd.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            self._park()
            return False
        except OSError:
            data = b""
        if not data:
            self._shut()
            self._lost()
            return False
        self.reader.feed(data)
        return True

    def _handle_frames(self) -> bool:
        """Handle up to MAX_FRAMES_PER_TURN frames; True when more may be waiting."""
        for _ in range(MAX_FRAMES_PER_TURN):
            if self.state == _CLOSED:
                return False
            event = self.reader.next()
            if event is None:
                return False
            self._on_event(*event)
        return True

    def _on_event(self, opcode: int, value) -> None:
        if opcode == PING:
            self.pong = value  # RFC 6455 5.5.3: only the latest ping needs its pong
        elif opcode == CLOSE:
            self._answer_ping()
            code = value[0]
            self._close(NORMAL if code is None else code, lost=True)
        elif opcode in (TEXT, BINARY):
            self._answer_ping()
            self._on_message(value)

    def _answer_ping(self) -> None:
        if self.pong is not None and self.state != _CLOSED:
            self._write(frame(PONG, self.pong))
        self.pong = None

    def _on_message(self, message: str | bytes) -> None:
        try:
            pkt = engineio.packet.Packet(encoded_packet=message)
        except Exception:  # noqa: BLE001 - any garbage from the client
            raise FrameError(BAD_DATA, "not an Engine.IO packet") from None
        if self.state == _OPEN:
            self._deliver(pkt)
        elif self.state == _PROBE:
            if pkt.packet_type != engineio.packet.PING or pkt.data != "probe":
                self._upgrade_failed("no PING probe")
                return
            self._write(frame(TEXT, b"3probe"))
            self.eio.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # ends the poll
            self.state = _UPGRADE
        elif self.state == _UPGRADE:
            if pkt.packet_type != engineio.packet.UPGRADE:
                self._upgrade_failed("no UPGRADE packet")
                return
            self.eio.upgraded, self.eio.upgrading = True, False
            self.state = _OPEN
            self._take_queue()

    def _deliver(self, pkt) -> None:
        try:
            self.eio.receive(pkt)
        except engineio.exceptions.UnknownPacketError:
            pass
        except engineio.exceptions.SocketIsClosedError:
            self._lost()
        except Exception:  # noqa: BLE001 - as engineio does: log, end this socket only
            log.exception("error handling a packet; socket closed")
            self._lost()

    def _upgrade_overdue(self) -> None:
        if self.state in (_PROBE, _UPGRADE):
            self.loop.spawn(self._upgrade_failed, "no upgrade within the time limit")

    def _upgrade_failed(self, why: str) -> None:
        if self.state not in (_PROBE, _UPGRADE):
            return  # completed (or closed) meanwhile
        log.debug("websocket upgrade failed: %s", why)
        self._close(PROTOCOL_ERROR)

    # --- writing ---

    def _write(self, data: bytes) -> None:
        """Send now, or buffer what the kernel cannot take yet. May run in the loop's
        own context (a ping timer): whatever must end the socket is spawned."""
        if self.sock is None:
            return
        if self.outbuf is not None:
            self.outbuf += data
            if len(self.outbuf) > MAX_PENDING_BYTES:
                log.info("client reads nothing; socket dropped",
                         extra={"fields": {"pending_bytes": len(self.outbuf)}})
                self._drop()
            return
        try:
            sent = self.fd.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop()
            return
        if sent < len(data):
            self.outbuf = bytearray(data[sent:])
            self.writing = self.loop.on_writable(self.fileno, self._writable)

    def _writable(self, fileno=None) -> None:
        """In the loop's own context: non-blocking sends only."""
        if self.writing is not None:
            self.loop.cancel(self.writing)
            self.writing = None
        if self.outbuf is None:
            return
        try:
            sent = self.fd.send(self.outbuf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop()
            return
        del self.outbuf[:sent]
        if self.outbuf:
            self.writing = self.loop.on_writable(self.fileno, self._writable)
            return
        self.outbuf = None
        if self.state == _CLOSED:
            self._shut()  # the close frame is out

    def _drop(self) -> None:
        """The connection is broken: release it now, tell Engine.IO from a greenlet."""
        self._shut()
        if self.state != _CLOSED:
            self.loop.spawn(self._lost)

    # --- closing ---

    def _lost(self) -> None:
        """The client side ended (EOF, reset, close frame, protocol error)."""
        self._close(NORMAL, lost=True)

    def _close(self, code: int, lost: bool = False) -> None:
        """End the websocket with a close frame; ``lost``: tell Engine.IO too."""
        if self.state == _CLOSED:
            return
        upgraded = self.state == _OPEN
        self.state = _CLOSED
        self._write(close_frame(code))
        if self.outbuf is None:
            self._shut()
        else:
            self.loop.call_later(CLOSE_FLUSH_SECONDS, self._shut)
        eio = self.eio
        if not upgraded:
            eio.upgrading = False  # the Engine.IO socket carries on with polling
            return
        if lost and not eio.closed:
            eio.close(wait=False, abort=True, reason=eio.server.reason.TRANSPORT_CLOSE)
        if eio.closed:
            eio.server.sockets.pop(eio.sid, None)

    def _shut(self) -> None:
        """Release the descriptor: no more reads or writes (idempotent)."""
        for handle in (self.reading, self.writing):
            if handle is not None:
                self.loop.cancel(handle)
        self.reading = self.writing = None
        self.reader.clear()
        self.backlog, self.pong = False, None
        self.outbuf = None
        if self.sock is not None:
            sock, self.sock = self.sock, None
            try:
                self.fd.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
