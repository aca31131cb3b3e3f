"""RFC 6455 framing for the server side of a websocket: pure functions over a buffer.

:class:`Reader` turns what a client sent into events (messages, pings, pongs,
a close), one frame per call. Frames are parsed by offset over one receive
buffer, which is compacted once its complete frames are handled, so a read
full of tiny frames costs time in proportion to its size (never a copy of the
rest of the buffer per frame), and an idle socket keeps no buffer. No sockets
and no Engine.IO here: ``bridge.transport`` owns those, and decides how many
frames to handle before yielding to other sockets.
"""

from __future__ import annotations

import codecs
import struct

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
_OPCODES = frozenset((TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG))
MAX_FRAGMENTS = 64  # frames per message (browsers send one)

# close codes (RFC 6455 section 7.4.1)
NORMAL, PROTOCOL_ERROR, BAD_DATA, TOO_BIG = 1000, 1002, 1007, 1009
# what a peer may send: the IANA-registered codes that are not local-only, and 3000-4999
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))
_MIN_APPLICATION, _MAX_APPLICATION = 3000, 4999


class FrameError(Exception):
    """A websocket frame breaks RFC 6455 or a limit; ends the connection with ``code``."""

    def __init__(self, code: int, why: str):
        super().__init__(why)
        self.code = code


def unmask(data, mask, length: int | None = None, offset: int = 0) -> bytes:
    """XOR ``data`` with a 4-byte websocket ``mask`` in one go (not byte by byte)."""
    length = len(data) if length is None else length
    if length <= 0:
        return b""
    start = offset % 4
    key = bytes(mask)[start:] + bytes(mask)[:start]
    stream = (key * (length // 4 + 1))[:length]
    value = int.from_bytes(data[:length], "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(length, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def close_frame(code: int) -> bytes:
    return frame(CLOSE, struct.pack("!H", code))


def parse_frame(buf, at: int, max_message: int):
    """The complete client frame at offset ``at`` of ``buf``: ``(fin, opcode, payload, end)``.

    None while ``buf`` holds only part of it. Raises :class:`FrameError`.
    """
    if len(buf) - at < 2:
        return None
    b0, b1 = buf[at], buf[at + 1]
    opcode, length, start = b0 & 0x0F, b1 & 0x7F, at + 2
    _check_head(b0, b1, opcode)
    if length >= 126:
        length, start = _extended_length(buf, at, length)
        if length is None:
            return None
    if length > max_message:
        raise FrameError(TOO_BIG, f"frame of {length} bytes")
    end = start + 4 + length
    if len(buf) < end:
        return None
    return bool(b0 & 0x80), opcode, unmask(buf[start + 4:end], buf[start:start + 4]), end


def _check_head(b0: int, b1: int, opcode: int) -> None:
    if opcode not in _OPCODES:
        raise FrameError(PROTOCOL_ERROR, f"unknown opcode {opcode}")
    if b0 & 0x70:
        raise FrameError(PROTOCOL_ERROR, "reserved bits set (no extension was agreed)")
    if opcode >= 8 and ((b1 & 0x7F) > 125 or not b0 & 0x80):
        raise FrameError(PROTOCOL_ERROR, "bad control frame")
    if not b1 & 0x80:
        raise FrameError(PROTOCOL_ERROR, "client frame not masked")


def _extended_length(buf, at: int, short: int):
    """``(length, offset of the mask)`` of a 16- or 64-bit length; ``(None, 0)`` if incomplete."""
    if short == 126:
        if len(buf) - at < 4:
            return None, 0
        length = struct.unpack_from("!H", buf, at + 2)[0]
        if length < 126:
            raise FrameError(PROTOCOL_ERROR, "length not in its shortest form")
        return length, at + 4
    if len(buf) - at < 10:
        return None, 0
    length = struct.unpack_from("!Q", buf, at + 2)[0]
    if length < 65536 or length >> 63:
        raise FrameError(PROTOCOL_ERROR, "bad 64-bit length")
    return length, at + 10


def close_status(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a client's close frame (code None: none given)."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise FrameError(PROTOCOL_ERROR, "close frame of 1 byte")
    code = struct.unpack_from("!H", payload)[0]
    if code not in _SENDABLE and not _MIN_APPLICATION <= code <= _MAX_APPLICATION:
        raise FrameError(PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(BAD_DATA, "close reason is not UTF-8") from None


class Reader:
    """One client's byte stream: frames by offset, fragmented messages put together.

    :meth:`next` handles one frame and returns an event ``(opcode, value)``:
    ``(TEXT, str)`` or ``(BINARY, bytes)`` for a whole message, ``(PING, bytes)``,
    ``(PONG, bytes)``, ``(CLOSE, (code, reason))``, or ``(CONTINUATION, None)``
    for a fragment kept until its message is complete.
    """

    __slots__ = ("buf", "at", "max_message", "parts", "opcode", "size", "decoder")

    def __init__(self, max_message: int):
        self.buf = bytearray()
        self.at = 0  # where the next frame starts
        self.max_message = max_message
        self.parts = None  # the fragments of an unfinished message
        self.opcode = self.size = 0
        self.decoder = None  # UTF-8, fragment by fragment, for a text message

    def feed(self, data: bytes) -> None:
        self.buf += data

    def clear(self) -> None:
        self.buf, self.at, self.parts, self.decoder = bytearray(), 0, None, None

    def next(self):
        """The event of the next complete frame, or None. Raises :class:`FrameError`."""
        parsed = parse_frame(self.buf, self.at, self.max_message)
        if parsed is None:
            if self.at:  # once per read: amortized O(n); frees the memory when all is read
                del self.buf[:self.at]
                self.at = 0
            return None
        fin, opcode, payload, self.at = parsed
        if opcode == CLOSE:
            return CLOSE, close_status(payload)
        if opcode >= 8:
            return opcode, payload
        if opcode == CONTINUATION:
            return self._continued(fin, payload)
        if self.parts is not None:
            raise FrameError(PROTOCOL_ERROR, "new message inside a fragmented one")
        if fin:
            return opcode, _text(payload) if opcode == TEXT else payload
        self.parts, self.opcode, self.size = [], opcode, 0
        if opcode == TEXT:
            self.decoder = codecs.getincrementaldecoder("utf-8")()
        return self._continued(False, payload)

    def _continued(self, fin: bool, payload: bytes):
        if self.parts is None:
            raise FrameError(PROTOCOL_ERROR, "continuation without a first frame")
        self.size += len(payload)
        if len(self.parts) >= MAX_FRAGMENTS or self.size > self.max_message:
            raise FrameError(TOO_BIG, "fragmented message too large")
        if self.decoder is not None:
            try:
                payload = self.decoder.decode(payload, fin)
            except UnicodeDecodeError:
                raise FrameError(BAD_DATA, "text frame is not UTF-8") from None
        self.parts.append(payload)
        if not fin:
            return CONTINUATION, None
        parts, self.parts, self.decoder = self.parts, None, None
        return self.opcode, ("" if self.opcode == TEXT else b"").join(parts)


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(BAD_DATA, "text frame is not UTF-8") from None
