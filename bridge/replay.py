"""Bringing one socket from a position to the live stream: replay, then join.

A socket that comes back with a position (:mod:`bridge.recovery`) is not in
its rooms yet. This runs right after its CONNECT reply went out: it reads the
history after the position in pages, sends the socket every entry addressed
to it (its user, its granted rooms, broadcasts; never ``disconnect``
messages, which only ever apply live), and joins the socket's rooms once it
has caught up with the live tail.

The switch is exact. The tail delivers an entry to the rooms and moves its
cursor past it in one step (:mod:`bridge.tail`), so at any moment where this
greenlet runs, everything up to the cursor went to the rooms and nothing
after it did. The replay reads up to the cursor, reads again while the
cursor moved meanwhile, and joins when it has reached the cursor without
yielding in between: no gap and no duplicate. A position ahead of the tail
(a page rendered an instant ago) waits for the tail to get there.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge import events
from bridge.history import History, format_position, parse_position

PAGE = 500  # entries per read
WAIT_SECONDS = 2.0  # for a tail that is behind the socket's position, or not started
WAIT_STEP = 0.005


def addressed_to(message: events.Message, user: str, rooms: frozenset[str]) -> bool:
    if message.disconnect_user is not None or message.canary is not None:
        return False
    if message.user is not None:
        return str(message.user) == user
    if message.room is not None:
        return message.room in rooms
    return True


class Replayer:
    """``recent``: the tail's memory of the last entries (:class:`bridge.tail.Recent`),
    read instead of Redis when it reaches back to the socket's position."""

    def __init__(self, *, history: History, cursor: Callable[[], str | None],
                 sleep: Callable[[float], None], recent=None):
        self.history = history
        self.cursor = cursor
        self.sleep = sleep
        self.recent = recent

    def run(self, since: str, user: str, rooms: frozenset[str],
            send: Callable[[events.Message, str], None],
            still_open: Callable[[], bool]) -> int | None:
        """Send what came after ``since``; returns how many events, or None when
        the socket went away meanwhile. Raises HistoryUnavailable."""
        at, sent, waited = parse_position(since), 0, 0.0
        while still_open():
            cursor = self.cursor()
            upto = parse_position(cursor) if cursor else None
            if upto is not None and at >= upto:
                return sent
            if upto is None or at > upto:  # the tail is behind: let it catch up
                if waited >= WAIT_SECONDS:
                    return sent
                self.sleep(WAIT_STEP)
                waited += WAIT_STEP
                continue
            at, count = self._page(at, cursor, user, rooms, send)
            sent += count
        return None

    def _page(self, at, cursor: str, user: str, rooms, send) -> tuple[tuple[int, int], int]:
        """One read after ``at`` up to ``cursor`` (from the tail's memory when it reaches
        back to ``at``, else from Redis); returns the new position and the count."""
        upto = parse_position(cursor)
        if self.recent is not None and self.recent.covers(at, upto):
            rows = self.recent.between(at, upto)
            return upto, self._send(rows, user, rooms, send)
        rows = self.history.read(format_position(at), cursor, PAGE)
        sent = self._send(rows, user, rooms, send)
        if len(rows) == PAGE:
            return parse_position(rows[-1][0]), sent
        return upto, sent

    @staticmethod
    def _send(rows, user: str, rooms, send) -> int:
        sent = 0
        for position, raw in rows:
            try:
                message = events.parse(raw)
            except events.BadMessage:
                continue  # the tail logged and counted it when it went by live
            if addressed_to(message, user, rooms):
                send(message, position)
                sent += 1
        return sent
