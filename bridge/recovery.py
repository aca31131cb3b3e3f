"""Where a connecting socket starts in the history (docs/contract.md section 8).

Three ways to come back, checked in this order:

* Socket.IO's connection state recovery: the official client (4.6+) keeps the
  ``pid`` of its CONNECT reply and the ``offset`` of the last event it got,
  and sends both in its CONNECT ``auth`` when it reconnects. A CONNECT reply
  carrying the same pid makes ``socket.recovered`` true on the client.
* A page load: ``auth: {since: "<position>"}``, the position PHP rendered.
* Neither: live events only, from now.

A pid is signed, ``<position>.<nonce>.<mac>``: HMAC-SHA256 over the user,
the position where that connection started and a nonce, with a key kept in
Redis (``{<channel>}:secret``, created once by the first daemon), so that a
restarted daemon or another node honours a pid another one issued, and a pid
is only honoured for the user it was issued to. A valid pid without an
offset (no event arrived yet) resumes where its connection started.
Recovery never replaces authentication: the session is checked first, and
only events addressed to that session's user and rooms are replayed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Callable

import redis

from bridge.history import History, HistoryUnavailable, parse_position

MAX_AUTH_TEXT = 100  # longer pids and positions are not ours


class KeyUnavailable(Exception):
    """The signing key could not be read from Redis."""


class Signer:
    def __init__(self, key: bytes):
        self.key = key

    def issue(self, user: str, position: str) -> str:
        nonce = secrets.token_urlsafe(9)
        return f"{position}.{nonce}.{self._mac(user, position, nonce)}"

    def verify(self, pid: str, user: str) -> str | None:
        """The position a pid started at, or None when it is not one of ours for ``user``."""
        parts = pid.split(".")
        if len(parts) != 3 or parse_position(parts[0]) is None:
            return None
        position, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(user, position, nonce)):
            return None
        return position

    def _mac(self, user: str, position: str, nonce: str) -> str:
        text = f"{user}\n{position}\n{nonce}".encode("utf-8", "surrogateescape")
        digest = hmac.new(self.key, text, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()


def load_key(client: redis.Redis, name: str) -> bytes:
    """The shared signing key: created by the first daemon, read by all."""
    try:
        client.set(name, secrets.token_hex(32), nx=True)
        key = client.get(name)
    except redis.RedisError as exc:
        raise KeyUnavailable(str(exc) or type(exc).__name__) from None
    if not key:
        raise KeyUnavailable(f"{name} is empty")
    return key


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one socket starts: replay from ``since``, or ``resync``, then live."""

    pid: str
    since: str | None = None
    resync: bool = False
    recovered: bool = False


class Recovery:
    """Turns a CONNECT's ``auth`` into a :class:`Plan`; may raise HistoryUnavailable.

    ``recent``: the tail's memory of the last entries (:class:`bridge.tail.Recent`);
    a position it covers needs no look at the stream's window in Redis."""

    def __init__(self, *, history: History, cursor: Callable[[], str | None],
                 recent=None):
        self.history = history
        self.cursor = cursor
        self.recent = recent
        self._signer: Signer | None = None

    def signer(self) -> Signer:
        if self._signer is None:
            try:
                self._signer = Signer(load_key(self.history.client, self.history.keys.secret))
            except KeyUnavailable as exc:
                raise HistoryUnavailable(str(exc)) from None
        return self._signer

    def plan(self, auth, user: str) -> Plan:
        auth = auth if isinstance(auth, dict) else {}
        signer = self.signer()
        pid, start = _text(auth.get("pid")), None
        if pid is not None:
            start = signer.verify(pid, user)
        if start is not None:
            offset = _text(auth.get("offset"))
            return self._from(offset or start, user, pid)
        if auth.get("since") is not None:
            return self._from(_text(auth.get("since")) or "", user, None)
        return Plan(pid=signer.issue(user, self.cursor() or "0-0"))

    def _from(self, position: str, user: str, pid: str | None) -> Plan:
        at = parse_position(position)
        if at is None or not (self._recent_covers(at) or self._history_covers(at, position)):
            return Plan(pid=self.signer().issue(user, self.cursor() or "0-0"), resync=True)
        return Plan(pid=pid or self.signer().issue(user, position), since=position,
                    recovered=pid is not None)

    def _history_covers(self, at: tuple[int, int], position: str) -> bool:
        """The stream holds everything after ``at``, and ``at`` is one of its positions:
        a position that a failover lost (the promoted replica never had it) is
        unknown, as the new master may number its own entries before it."""
        window = self.history.window()
        if not window.covers(at):
            return False
        return at in (window.trimmed, (0, 0)) or self.history.holds(position)

    def _recent_covers(self, at: tuple[int, int]) -> bool:
        """The tail remembers every entry after ``at``: no need to ask Redis."""
        cursor = parse_position(self.cursor() or "")
        return self.recent is not None and cursor is not None and self.recent.covers(at, cursor)


def _text(value) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_AUTH_TEXT else None
