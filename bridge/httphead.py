"""The head of an HTTP/1.x request: found in the bytes received, and parsed, without ``email``.

The Socket.IO listener's server (:mod:`bridge.httpserver`) reads with
``recv`` into one buffer; :func:`split` finds where the head ends (the
blank line), :func:`parse` reads its request line and field lines. The
standard library's ``http.server`` would hand every header block to the
``email`` package (a feed parser and a ``Message`` per request): 7-8 % of
an authorized connect's CPU, for a dozen ``Name: value`` lines.

Only the plain request form is served: ``METHOD TARGET HTTP/1.1`` (or
``HTTP/1.0``); every Engine.IO request has it. HTTP/0.9, other versions and
malformed request lines are answered 400 (505 for HTTP/2 and later). It is
stricter than ``email`` where RFC 9112 allows a server to be: a field line
without a colon, with whitespace before the colon, or folded onto the next
line (obs-fold) is a 400 instead of a quietly mangled header. Sizes are
eventlet.wsgi's, which served this listener before: a request line of 8 KiB
or more is a 414, a field line over 8 KiB, more than ``MAX_FIELDS`` fields,
or a head over 64 KiB a 431.
"""

from __future__ import annotations

MAX_FIELDS = 100  # http.client's limit, answered with 431 like http.server does
MAX_LINE = 8192  # per field line (eventlet.wsgi's MAX_HEADER_LINE)
MAX_REQUEST_LINE = 8192  # eventlet.wsgi's url_length_limit: 414 at or above
MAX_HEAD = MAX_REQUEST_LINE + 65536  # eventlet.wsgi's MAX_TOTAL_HEADER_SIZE after the line
PLAIN_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
_NOT_IN_NAME = frozenset(" \t\r\n\v\f")


class BadHead(ValueError):
    """The head cannot be read; ``status`` and ``reason`` are the answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def split(buffer: bytes) -> tuple[bytes, bytes] | None:
    """(head, the bytes after its blank line) once ``buffer`` holds a whole head;
    None while it may still come. Lines may end in CRLF or a bare LF."""
    crlf = buffer.find(b"\n\r\n")
    lf = buffer.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return buffer[:lf], buffer[lf + 2:]
    if crlf >= 0:
        return buffer[:crlf], buffer[crlf + 3:]
    if len(buffer) >= MAX_REQUEST_LINE and b"\n" not in buffer[:MAX_REQUEST_LINE]:
        raise BadHead(414, "Request-URI Too Long")
    if len(buffer) > MAX_HEAD:
        raise BadHead(431, "Request Header Fields Too Large")
    return None


def parse(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """(method, target, version, fields) of a head :func:`split` found."""
    text = head.decode("iso-8859-1")
    line, _, block = text.partition("\n")
    if len(line) >= MAX_REQUEST_LINE:
        raise BadHead(414, "Request-URI Too Long")
    words = line.split()
    if len(words) != 3 or words[2] not in PLAIN_VERSIONS:
        raise BadHead(*_refusal(words))
    method, target, version = words
    if target.startswith("//"):  # as http.server: never read as a scheme-less absolute URI
        target = "/" + target.lstrip("/")
    return method, target, version, fields(block)


def _refusal(words: list[str]) -> tuple[int, str]:
    version = words[-1] if len(words) >= 2 else ""
    major = version[5:].partition(".")[0]
    if version.startswith("HTTP/") and major.isascii() and major.isdigit() and int(major) >= 2:
        return 505, "HTTP Version Not Supported"
    return 400, "Bad Request"


def fields(block: str) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of the field lines in ``block``, up to a blank line."""
    pairs: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if not line or line == "\r":
            break
        if len(line) > MAX_LINE:
            raise BadHead(431, "Line too long")
        if len(pairs) >= MAX_FIELDS:
            raise BadHead(431, "Too many headers")
        name, colon, value = line.partition(":")
        if not colon or not name or not _NOT_IN_NAME.isdisjoint(name):
            raise BadHead(400, "Bad header line")  # also obs-fold: it starts with whitespace
        pairs.append((name, value.strip(" \t\r\n")))
    return pairs
