"""Sessions that end: the sockets of a PHP session end when the session does.

Two modes, chosen at start (and again after every Redis reconnect):

* ``keyspace`` (push): Redis keyspace notifications for exactly the session
  keys that have sockets here. One SUBSCRIBE per key, never a pattern over
  the whole database, so unrelated writes cost this daemon nothing (Predis
  stores bare ids, so session keys share no prefix with anything). ``del``
  -> ``destroyed``; ``expired``/``evicted`` -> ``expired``; ``set`` -> the
  session is read again and ends as ``logged_out`` when its user is gone or
  different.
* ``timer`` (poll), where notifications cannot be enabled (managed Redis,
  CONFIG renamed): every ``revalidate_seconds`` each open session is read
  again; a missing one ends as ``destroyed``, one without the same user as
  ``logged_out``.

After a subscription loss, every open session is swept once, so sessions
deleted while Redis was away are caught.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import redis

from bridge import logs
from bridge.auth import (
    NOT_AUTHENTICATED,
    SESSION_NOT_FOUND,
    SESSION_UNREADABLE,
    STORE_UNAVAILABLE,
    Authenticator,
    Identity,
    Refused,
)
from bridge.keepalive import KeepAlive
from bridge.keyspace import enable_notifications, enable_on_server
from bridge.logs import session_tag
from bridge.outage import Outage, persist
from bridge.registry import Registry
from bridge.shards import ClusterKeyspace
from bridge.store import SessionStore, is_cluster

log = logs.get("lifecycle")

DESTROYED, EXPIRED, LOGGED_OUT, REVOKED = "destroyed", "expired", "logged_out", "revoked"
KEYSPACE, TIMER = "keyspace", "timer"
_EVENT_REASONS = {"del": DESTROYED, "unlink": DESTROYED, "rename_from": DESTROYED,
                  "expired": EXPIRED, "evicted": EXPIRED}
# What a cluster node announces when MIGRATE moves a key to another node.
_MIGRATE_EVENTS = {"del"}


RETRY_SECONDS = 0.5


class SessionWatch:
    """Watches the sessions of this daemon's sockets and ends the ones that end."""

    def __init__(self, *, client: redis.Redis, store: SessionStore,
                 authenticator: Authenticator, registry: Registry,
                 end_sockets: Callable[[list[str], str], None], revalidate_seconds: float,
                 may_configure: bool, sleep: Callable[[float], None],
                 keep_alive: KeepAlive | None = None,
                 on_mode: Callable[[str], None] = lambda mode: None):
        self.client = client
        self.store = store
        self.authenticator = authenticator
        self.registry = registry
        self.end_sockets = end_sockets
        self.revalidate_seconds = revalidate_seconds
        self.may_configure = may_configure
        self.sleep = sleep
        self.on_mode = on_mode
        self.keep_alive = keep_alive
        self.sharded = is_cluster(client)
        self.outage = Outage("session watch", log)
        self.mode = ""
        self.live = False
        self.running = True
        self._changes: collections.deque[tuple[bool, str]] = collections.deque()
        self._last_sweep = time.monotonic()
        # Sessions whose re-read Redis could not answer (a pooled connection to a
        # Redis that restarted, a timeout): read again every RETRY_SECONDS, since
        # no keyspace event may ever come for them (a key lost in a crash).
        self._unverified: set[str] = set()
        self._last_retry = 0.0

    # --- called by the socket layer ---

    def watch(self, session_id: str) -> None:
        """A session got its first socket here."""
        self._changes.append((True, session_id))

    def unwatch(self, session_id: str) -> None:
        """A session lost its last socket here."""
        self._changes.append((False, session_id))

    # --- the loop ---

    def run(self) -> None:
        persist(self._run_once, outage=self.outage, sleep=self.sleep, running=lambda: self.running,
                lost=self._lost)

    def _lost(self) -> None:
        self.live = False

    def _run_once(self) -> None:
        problem = enable_notifications(self.client, self.may_configure)
        self._set_mode(TIMER if problem else KEYSPACE, problem)
        if self.outage.recovered() and self.mode == TIMER:
            self.sweep()  # catch the sessions that ended while Redis was away
        # (In keyspace mode _listen subscribes every open session again, and
        # each subscription's confirmation re-reads its session: the same sweep.)
        if self.mode == KEYSPACE:
            self._listen()
        else:
            self._poll()

    def _set_mode(self, mode: str, problem: str | None) -> None:
        if mode != self.mode:
            if problem:
                log.warning("keyspace notifications unavailable; re-checking sessions "
                            f"every {self.revalidate_seconds:g} s",
                            extra={"fields": {"why": problem}})
            else:
                log.info("watching session keys with keyspace notifications")
            self.mode = mode
            self.on_mode(mode)

    def _poll(self) -> None:
        self.live = True
        while self.running:
            self._changes.clear()  # the timer reads the registry; nothing to subscribe
            self.sleep(min(self.revalidate_seconds, 0.5))
            if time.monotonic() - self._last_sweep >= self.revalidate_seconds:
                self.sweep()
            self._refresh()
            self._retry_unverified()

    def _subscriber(self):
        """One pub/sub connection; on a cluster, one per primary, routed by key slot."""
        if is_cluster(self.client):
            return ClusterKeyspace(self.client, prepare=lambda node: enable_on_server(
                node, self.may_configure))
        return self.client.pubsub()

    def _listen(self) -> None:
        pubsub = self._subscriber()
        try:
            self._changes.clear()
            for session_id in self.registry.session_ids():
                self._changes.append((True, session_id))
            pubsub.subscribe("__session-bridge-watch__")  # open the connection
            self.live = True
            while self.running:
                self._apply_changes(pubsub)
                item = pubsub.get_message(timeout=0.05)
                confirmed: list[str] = []
                while item is not None:
                    self._on_item(item, confirmed)
                    item = pubsub.get_message(timeout=0)
                self.check_all(confirmed)
                self._refresh()
                self._retry_unverified()
        finally:
            self.live = False
            pubsub.close()

    def _apply_changes(self, pubsub) -> None:
        subscribe, unsubscribe = [], []
        while self._changes:
            wanted, session_id = self._changes.popleft()
            (subscribe if wanted else unsubscribe).append(session_id)
        gone = [s for s in unsubscribe if not self.registry.has_session(s)]
        if gone:
            pubsub.unsubscribe(*[self.store.keyspace_channel(s) for s in gone])
        fresh = [s for s in subscribe if self.registry.has_session(s)]
        if fresh:
            pubsub.subscribe(*[self.store.keyspace_channel(s) for s in fresh])

    def _on_item(self, item: dict, confirmed: list[str] | None = None) -> None:
        """Act on one pub/sub item. Subscription confirmations collect in ``confirmed``
        (checked together by ``check_all``, before any later event of the same read);
        without that list each is checked at once."""
        channel = _text(item.get("channel"))
        session_id = self.store.session_id_of_channel(channel)
        if session_id is None:
            return
        if item["type"] == "subscribe":
            # closes the gap between the connect's GET and now
            if confirmed is None:
                self.check(session_id)
            else:
                confirmed.append(session_id)
        elif item["type"] == "message":
            if confirmed:  # earlier confirmations first: events act in arrival order
                self.check_all(confirmed)
                confirmed.clear()
            event = _text(item["data"])
            if event in _EVENT_REASONS and not (event in _MIGRATE_EVENTS and self.sharded):
                self.end(session_id, _EVENT_REASONS[event])
            elif event == "set" or event in _MIGRATE_EVENTS:
                self.check(session_id)  # on a cluster, "del" may be a slot moving away

    # --- decisions ---

    def check(self, session_id: str) -> None:
        """Read one session again; end its sockets if it no longer holds their user."""
        sockets = self.registry.sockets_of_session(session_id)
        if not sockets:
            return
        try:
            identity = self.authenticator.identify(session_id)
        except Refused as refusal:
            identity = refusal
        self._decide(session_id, sockets, identity)

    def check_all(self, session_ids: list[str]) -> None:
        """``check`` of each session, the reads in one round trip to Redis."""
        wanted = [s for s in dict.fromkeys(session_ids) if self.registry.has_session(s)]
        if len(wanted) < 2:
            for session_id in wanted:
                self.check(session_id)
            return
        sockets = [self.registry.sockets_of_session(s) for s in wanted]  # as check() does
        outcomes = self.authenticator.identify_many(wanted)
        for session_id, its_sockets, outcome in zip(wanted, sockets, outcomes, strict=True):
            self._decide(session_id, its_sockets, outcome)

    def _decide(self, session_id: str, sockets: list[str], identity: Identity | Refused) -> None:
        """End the sockets whose session no longer holds their user."""
        if isinstance(identity, Refused):
            reason = _reason_of_refusal(identity.reason)
            if reason:
                self.end(session_id, reason)
            elif identity.reason == STORE_UNAVAILABLE:
                self._unverified.add(session_id)
            return
        self._unverified.discard(session_id)
        stale = [sid for sid in sockets
                 if (known := self.registry.identity(sid)) and known.user != identity.user]
        if stale:
            self.end(session_id, LOGGED_OUT, stale)

    def _retry_unverified(self) -> None:
        now = time.monotonic()
        if self._unverified and now - self._last_retry >= RETRY_SECONDS:
            self._last_retry = now
            pending, self._unverified = list(self._unverified), set()
            self.check_all(pending)  # what Redis cannot answer again comes back here

    def sweep(self) -> None:
        """Check every open session (timer mode, and after a Redis outage)."""
        self._last_sweep = time.monotonic()
        for session_id in self.registry.session_ids():
            if not self.running:
                return
            self.check(session_id)

    def end(self, session_id: str, reason: str, sockets: list[str] | None = None) -> None:
        sockets = sockets if sockets is not None else self.registry.sockets_of_session(session_id)
        if sockets:
            log.info("session ended", extra={"fields": {
                "reason": reason, "session": session_tag(session_id), "sockets": len(sockets)}})
            self.end_sockets(sockets, reason)

    def _refresh(self) -> None:
        if self.keep_alive is not None:
            self.keep_alive.refresh()

    def stop(self) -> None:
        self.running = False


def _reason_of_refusal(code: str) -> str | None:
    """Map a failed re-read to a session-end reason; None keeps the sockets."""
    if code == SESSION_NOT_FOUND:
        return DESTROYED
    if code in (NOT_AUTHENTICATED, SESSION_UNREADABLE):
        return LOGGED_OUT
    if code == STORE_UNAVAILABLE:
        return None  # fail closed for new sockets, but do not drop open ones
    return None


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value or "")
