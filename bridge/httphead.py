"""The head of an HTTP request: its request line and header fields, read without ``email``.

The standard library's ``http.server`` hands every header block to the
``email`` package (a feed parser and a ``Message`` per request): 7-8 % of
an authorized connect's CPU, for a dozen ``Name: value`` lines.
Every Engine.IO request (the websocket upgrade, each poll) has the plain
form read here; anything else (HTTP/0.9, odd versions, a malformed request
line) is left to ``http.server``'s own checks by returning None from
:func:`request_line`.

The fields object answers what eventlet.wsgi asks of ``http.server``'s
headers (``get``, ``_headers``, ``get_content_type``). It is stricter than
``email`` where RFC 9112 allows a server to be: a field line without a colon,
with whitespace before the colon, or folded onto the next line (obs-fold) is a
400 instead of a quietly mangled header, and more than ``MAX_FIELDS`` fields
is a 431 as before.
"""

from __future__ import annotations

MAX_FIELDS = 100  # http.client's limit, answered with 431 like http.server does
MAX_LINE = 65536  # per line; eventlet.wsgi's own smaller limits apply first
PLAIN_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
_END = (b"\r\n", b"\n", b"")
_NOT_IN_NAME = frozenset(" \t\r\n\v\f")


class BadHead(ValueError):
    """The header block cannot be read; ``status`` and ``reason`` are the answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Fields:
    """A request's header fields, in order, with case-insensitive ``get`` of the first."""

    __slots__ = ("_headers", "_first")

    def __init__(self, pairs: list[tuple[str, str]]):
        self._headers = pairs  # eventlet.wsgi's get_environ reads this list
        self._first: dict[str, str] = {}
        for name, value in pairs:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default=None):
        return self._first.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._first

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    @staticmethod
    def get_content_type() -> str:
        """Asked only when there is no Content-Type: email's default, kept for the environ."""
        return "text/plain"


def request_line(raw: bytes) -> tuple[str, str, str] | None:
    """(method, target, version) of ``METHOD TARGET HTTP/1.x``; None for any other form."""
    words = raw.decode("iso-8859-1").split()
    if len(words) != 3 or words[2] not in PLAIN_VERSIONS:
        return None
    method, target, version = words
    if target.startswith("//"):  # as http.server: never read as a scheme-less absolute URI
        target = "/" + target.lstrip("/")
    return method, target, version


def read_fields(readline) -> Fields:
    """Read header lines up to the blank line (or EOF) with ``readline(limit)``."""
    pairs: list[tuple[str, str]] = []
    while True:
        line = readline(MAX_LINE + 1)
        if line in _END:
            return Fields(pairs)
        if len(line) > MAX_LINE:
            raise BadHead(431, "Line too long")
        if len(pairs) >= MAX_FIELDS:
            raise BadHead(431, "Too many headers")
        text = line.decode("iso-8859-1")
        name, colon, value = text.partition(":")
        if not colon or not name or not _NOT_IN_NAME.isdisjoint(name):
            raise BadHead(400, "Bad header line")  # also obs-fold: it starts with whitespace
        pairs.append((name, value.strip(" \t\r\n")))
