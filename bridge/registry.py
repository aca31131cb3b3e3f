"""The sockets this daemon holds, indexed by user and by PHP session.

Plain bookkeeping with no I/O: the Socket.IO layer adds and removes sockets,
the session-end watcher asks which sockets a session or a user has.
"""

from __future__ import annotations

from collections import defaultdict

from bridge.auth import Identity


class Registry:
    """``tally``: with ``--workers N``, the sockets per user of every worker
    (``bridge.quota.Quota``); counts then span the whole daemon."""

    def __init__(self, tally=None):
        self._tally = tally
        self._identity: dict[str, Identity] = {}
        self._by_user: dict[str, set[str]] = defaultdict(set)
        self._by_session: dict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._identity)

    def add(self, sid: str, identity: Identity) -> bool:
        """Record a socket; True when it is the first socket of its session."""
        self._identity[sid] = identity
        self._by_user[identity.user].add(sid)
        if self._tally is not None:
            self._tally.add_socket(identity.user)
        first = identity.session_id not in self._by_session
        self._by_session[identity.session_id].add(sid)
        return first

    def remove(self, sid: str) -> Identity | None:
        """Forget a socket; returns its identity, or None if it was unknown."""
        identity = self._identity.pop(sid, None)
        if identity is not None:
            _discard(self._by_user, identity.user, sid)
            if self._tally is not None:
                self._tally.remove_socket(identity.user)
            _discard(self._by_session, identity.session_id, sid)
        return identity

    def identity(self, sid: str) -> Identity | None:
        return self._identity.get(sid)

    def count_of_user(self, user: str) -> int:
        if self._tally is not None:
            return self._tally.sockets_of(user)
        return len(self._by_user.get(user, ()))

    def sockets_of_user(self, user: str) -> list[str]:
        return list(self._by_user.get(user, ()))

    def sockets_of_session(self, session_id: str) -> list[str]:
        return list(self._by_session.get(session_id, ()))

    def has_session(self, session_id: str) -> bool:
        return session_id in self._by_session

    def session_ids(self) -> list[str]:
        return list(self._by_session)


def _discard(index: dict[str, set[str]], key: str, sid: str) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(sid)
        if not members:
            del index[key]
