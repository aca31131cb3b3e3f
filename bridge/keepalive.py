"""keep_alive: while a session has sockets here, its PHP idle timeout does not run out.

Off by default, and documented as changing the PHP app's idle timeout. When
on, every third of a session's lifetime its key's TTL is put back to that
lifetime (EXPIRE never creates a key, so a session deleted meanwhile stays
deleted). The lifetime is the TTL seen when the session got its first socket
here: PHP rewrites the session (SETEX gc_maxlifetime) on each page load, so
that is the PHP app's own idle timeout.
"""

from __future__ import annotations

import time

from bridge.registry import Registry
from bridge.store import SessionStore, StoreUnavailable


class KeepAlive:
    def __init__(self, *, store: SessionStore, registry: Registry):
        self.store = store
        self.registry = registry
        self._lifetimes: dict[str, tuple[int, float]] = {}  # session -> (lifetime, touched)
        self._last_refresh = 0.0

    def refresh(self) -> None:
        """Touch the sessions that are due; cheap to call often (at most twice a second)."""
        now = time.monotonic()
        if now - self._last_refresh < 0.5:
            return
        self._last_refresh = now
        open_sessions = self.registry.session_ids()
        for session_id in open_sessions:
            lifetime, touched = self._lifetimes.get(session_id, (0, 0.0))
            try:
                if not lifetime:
                    lifetime = self.store.ttl(session_id) or 0
                    self._lifetimes[session_id] = (lifetime, now)
                elif now - touched >= lifetime / 3:
                    self.store.touch(session_id, lifetime)
                    self._lifetimes[session_id] = (lifetime, now)
            except StoreUnavailable:
                return
        if len(self._lifetimes) > len(open_sessions):
            keep = set(open_sessions)
            self._lifetimes = {k: v for k, v in self._lifetimes.items() if k in keep}
