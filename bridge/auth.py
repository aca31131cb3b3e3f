"""From a handshake's Cookie header to a logged-in PHP user, or a reason code.

This module knows the reason codes of the contract and nothing of Socket.IO:
it takes a header and returns an :class:`Identity`, or raises :class:`Refused`
carrying exactly one reason code. Order of checks: cookie present, id well
formed (no Redis access before that), session found, session decodable,
``user_key`` holding an identity.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bridge import cookies, frameworks, php
from bridge.store import NotAString, SessionStore, StoreUnavailable

NO_SESSION = "no_session"
INVALID_SESSION_ID = "invalid_session_id"
SESSION_NOT_FOUND = "session_not_found"
NOT_AUTHENTICATED = "not_authenticated"
SESSION_UNREADABLE = "session_unreadable"
STORE_UNAVAILABLE = "store_unavailable"
RATE_LIMITED = "rate_limited"
TOO_MANY_SOCKETS = "too_many_sockets"

REASONS = (NO_SESSION, INVALID_SESSION_ID, SESSION_NOT_FOUND, NOT_AUTHENTICATED,
           SESSION_UNREADABLE, STORE_UNAVAILABLE, RATE_LIMITED, TOO_MANY_SOCKETS)


class Refused(Exception):
    """The handshake is refused; ``reason`` is one code of REASONS.

    ``detail`` is for the log only (never sent to the browser, never holds
    session contents).
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.session_id: str | None = None  # set once known, for a hashed log field


@dataclasses.dataclass(frozen=True)
class Identity:
    """A logged-in PHP user, as one session says."""

    session_id: str
    user: str  # the id as PHP prints it: room "user:<user>"
    user_json: Any  # the id as JSON (42, or "alice")
    exposed: dict  # exposed path -> JSON value, only those present
    rooms: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Reading:
    """One session as read from Redis: what ``inspect`` shows."""

    key: str
    raw: bytes | None
    format: str | None = None
    variables: dict | None = None
    ttl: int | None = None


class Authenticator:
    """Decides handshakes; takes explicit settings, never the whole config."""

    def __init__(self, *, store: SessionStore, cookie_name: str, session_format: str,
                 max_session_bytes: int, user_key: str, expose: tuple[str, ...] = (),
                 rooms_key: str = "", framework: frameworks.Plain = frameworks.PLAIN):
        self.store = store
        self.framework = framework  # the preset: cookie -> id, session -> user
        self.cookie_name = cookie_name
        self.session_format = session_format
        self.max_session_bytes = max_session_bytes
        self.user_key = user_key
        self.expose = expose
        self.rooms_key = rooms_key

    def session_id(self, cookie_header: str | None) -> str:
        """The well-formed session id of a Cookie header, or Refused."""
        value = cookies.session_cookie(cookie_header, self.cookie_name)
        if value is None:
            raise Refused(NO_SESSION)
        session_id = self.framework.session_id(value)
        if session_id is None:
            raise Refused(INVALID_SESSION_ID)
        return session_id

    def identify(self, session_id: str) -> Identity:
        """The user a stored session holds, or Refused with the reason."""
        reading = self.read(session_id)
        return self.identity_of(session_id, reading.variables)

    def read(self, session_id: str, with_ttl: bool = False) -> Reading:
        """Fetch and decode one session; Refused when missing or unreadable."""
        try:
            if with_ttl:
                raw, ttl = self.store.get_with_ttl(session_id)
            else:
                raw, ttl = self.store.get(session_id), None
        except StoreUnavailable as exc:
            raise Refused(STORE_UNAVAILABLE, str(exc)) from None
        except NotAString:
            raise Refused(SESSION_UNREADABLE, "the key is not a string") from None
        return self._decoded(session_id, raw, ttl)

    def identify_many(self, session_ids: list[str]) -> list[Identity | Refused]:
        """``identify`` of several sessions, read from Redis in one round trip: for each,
        the Identity, or the Refused that ``identify`` would have raised."""
        try:
            raws = self.store.get_many(session_ids)
        except StoreUnavailable as exc:
            return [Refused(STORE_UNAVAILABLE, str(exc))] * len(session_ids)
        outcomes: list[Identity | Refused] = []
        for session_id, raw in zip(session_ids, raws, strict=True):
            try:
                if isinstance(raw, StoreUnavailable):
                    raise Refused(STORE_UNAVAILABLE, str(raw))
                if isinstance(raw, NotAString):
                    raise Refused(SESSION_UNREADABLE, "the key is not a string")
                reading = self._decoded(session_id, raw, None)
                outcomes.append(self.identity_of(session_id, reading.variables))
            except Refused as refusal:
                outcomes.append(refusal)
        return outcomes

    def _decoded(self, session_id: str, raw: bytes | None, ttl: int | None) -> Reading:
        key = self.store.key(session_id)
        if raw is None:
            raise Refused(SESSION_NOT_FOUND)
        if len(raw) > self.max_session_bytes:
            raise Refused(SESSION_UNREADABLE, f"{len(raw)} bytes, over max_session_bytes")
        try:
            fmt, variables = self.framework.decode(
                raw, session_format=self.session_format, max_bytes=self.max_session_bytes)
        except php.SessionDecodeError as exc:
            raise Refused(SESSION_UNREADABLE, str(exc)) from None
        return Reading(key=key, raw=raw, format=fmt, variables=variables, ttl=ttl)

    def identity_of(self, session_id: str, variables: dict) -> Identity:
        """The identity in decoded session variables, or Refused(not_authenticated)."""
        scope, variables = self._scope(variables)
        try:
            value = php.lookup(scope, self.user_key)
        except KeyError:
            raise Refused(NOT_AUTHENTICATED, f"{self.user_key} absent") from None
        user = php.php_str(value)
        if not user:
            raise Refused(NOT_AUTHENTICATED, f"{self.user_key} holds no identity")
        return Identity(session_id=session_id, user=user,
                        user_json=php.to_json(value),
                        exposed=self._exposed(variables), rooms=self._rooms(variables))

    def _scope(self, variables: dict) -> tuple[object, dict]:
        """Where the preset keeps the user (Symfony: in the security token)."""
        try:
            return self.framework.scope(variables)
        except KeyError as exc:
            raise Refused(NOT_AUTHENTICATED, exc.args[0] if exc.args else "no user") from None
        except php.SessionDecodeError as exc:
            raise Refused(SESSION_UNREADABLE, str(exc)) from None

    def _exposed(self, variables: dict) -> dict:
        shown = {}
        for path in self.expose:
            try:
                shown[path] = php.to_json(php.lookup(variables, path))
            except KeyError:
                continue
        return shown

    def _rooms(self, variables: dict) -> tuple[str, ...]:
        """Rooms the PHP app granted in the session (``rooms_key``), if set."""
        if not self.rooms_key:
            return ()
        try:
            granted = php.lookup(variables, self.rooms_key)
        except KeyError:
            return ()
        names = granted.values() if isinstance(granted, dict) else ()
        rooms = (php.php_str(name) for name in names)
        return tuple(r for r in rooms if r and not r.startswith("user:"))
