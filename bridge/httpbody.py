"""A request's body as WSGI's ``wsgi.input``: by Content-Length or chunked, with 100-continue.

The server (:mod:`bridge.httpserver`) has usually received the body with the
head, in one ``recv``: those bytes come first, then the connection's. Bytes
past the body (a pipelined next request) are handed back by :meth:`Body.rest`.
A client that sent ``Expect: 100-continue`` is told to go on when the app
first reads. The connection is any object with blocking ``recv`` and
``sendall`` (a green socket).
"""

from __future__ import annotations

import sys

READ_SIZE = 65536  # most a single recv asks for
MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions), or a trailer line
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BadBody(ValueError):
    """The chunked body is malformed, or the client closed before its end."""


class Body:
    """``wsgi.input`` (and ``eventlet.input``: python-engineio's eventlet websocket asks
    it for the connection with :meth:`get_socket`)."""

    __slots__ = ("_conn", "_buffer", "_left", "_chunked", "_continue", "_done", "broken")

    def __init__(self, conn, buffer: bytes, length: int, chunked: bool, expect_continue: bool):
        self._conn = conn
        self._buffer = buffer  # received, not yet given to the app
        self._left = length  # of the body, or of the current chunk
        self._chunked = chunked
        self._done = not chunked and length == 0
        self._continue = expect_continue and not self._done  # 100 Continue still owed
        self.broken = False  # the body could not be read to its end: close the connection

    def get_socket(self):
        return self._conn

    @property
    def finished(self) -> bool:
        """The whole body has been read (or there was none)."""
        return self._done

    @property
    def continue_owed(self) -> bool:
        """The client waits for a 100 Continue that never went out (the app did not read)."""
        return self._continue

    def read(self, size: int | None = -1) -> bytes:
        if self._done:
            return b""
        if self._continue:
            self._continue = False
            self._conn.sendall(CONTINUE)
        if self._chunked:
            return self._read_chunked(size)
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._take(want)
        self._left -= len(data)
        if len(data) < want:
            self.broken = True
        self._done = self._left == 0 or self.broken
        return data

    def rest(self) -> bytes | None:
        """After the response: the bytes past this body (the next request's start),
        the unread body read and dropped first; None when the connection cannot go on."""
        if self._continue:
            return None  # the client may or may not send the body now: start afresh
        try:
            while not self._done:
                self.read(READ_SIZE)
        except (BadBody, OSError):
            return None
        return None if self.broken else self._buffer

    # --- reading ---

    def _take(self, want: int) -> bytes:
        """``want`` bytes (fewer when the client closes first)."""
        buffer = self._buffer
        if len(buffer) < want:
            parts, have = [buffer], len(buffer)
            while have < want:
                chunk = self._conn.recv(min(max(want - have, 4096), READ_SIZE))
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            buffer = b"".join(parts)
        self._buffer = buffer[want:]
        return buffer[:want]

    def _line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                return line.rstrip(b"\r")
            if len(self._buffer) > MAX_CHUNK_LINE:
                raise BadBody("chunk line too long")
            chunk = self._conn.recv(4096)
            if not chunk:
                raise BadBody("closed inside a chunked body")
            self._buffer += chunk

    def _read_chunked(self, size: int | None) -> bytes:
        parts: list[bytes] = []
        want = sys.maxsize if size is None or size < 0 else size
        try:
            while want > 0 and not self._done:
                if self._left == 0 and not self._next_chunk():
                    break
                data = self._take(min(want, self._left))
                if not data:
                    raise BadBody("closed inside a chunk")
                parts.append(data)
                self._left -= len(data)
                want -= len(data)
                if self._left == 0 and self._line():
                    raise BadBody("chunk not followed by CRLF")
        except BadBody:
            self.broken = self._done = True
            raise
        return b"".join(parts)

    def _next_chunk(self) -> bool:
        """Start the next chunk; False at the last one (its trailer lines are dropped)."""
        size = self._line().split(b";", 1)[0].strip()
        try:
            self._left = int(size, 16)
        except ValueError:
            raise BadBody("bad chunk size") from None
        if self._left < 0:
            raise BadBody("bad chunk size")
        if self._left == 0:
            while self._line():
                pass
            self._done = True
            return False
        return True
