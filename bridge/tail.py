"""The live tail of the history: every new entry, in order, to this daemon's sockets.

One loop per daemon reads the stream with ``XREAD BLOCK`` from its *cursor*,
the position of the last entry it delivered. After a lost connection (a
Redis restart, a failover) it reads on from the cursor, so an outage delays
events but loses none of those the stream still holds.

The cursor is also the switch point for sockets that replay the history
(:mod:`bridge.replay`): an entry is delivered and the cursor moved past it in
one step, with no yield in between, so "everything up to the cursor has been
delivered to the rooms" holds whenever another greenlet looks.

A failover can go back in time. Replication is asynchronous: the replica that
is promoted may lack the newest entries this daemon already delivered, and
the new master then numbers its own entries from where *it* stopped, so they
may get positions at or before the cursor. After every reconnect the tail
therefore finds the newest entry that the stream and its memory share (same
position, same message) and reads on from there (:func:`common_point`); the
entries after it that the stream lost are forgotten. A publisher retries such
an entry with its idempotency key (its append was never acknowledged): the
copy is not delivered again to the sockets that were there when the tail
noticed the loss.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from bridge import events, logs
from bridge.history import ZERO, History, parse_position
from bridge.outage import Outage, persist

log = logs.get("tail")

BATCH = 500  # entries per read
RECENT = 1000  # entries the tail remembers, for sockets that come back a moment later
RECENT_BYTES = 8 << 20  # and at most this much of their messages
REALIGN_PAGE = 50  # entries per read when looking for where a failover left the stream


class Recent:
    """The last entries the tail delivered, in order, as read from the stream.

    A socket that comes back with a position among them (a page load a
    moment after the render) is covered and replayed from memory, without
    asking Redis: every entry after ``start`` up to the cursor is here. At
    most ``history_size`` entries, so that what is remembered is what the
    append script keeps in any case (the last ``history_size``), and at
    most ``max_bytes`` of messages (a message may be up to 1 MiB).
    """

    def __init__(self, size: int = RECENT, max_bytes: int = RECENT_BYTES):
        self.entries: deque[tuple[tuple[int, int], str, bytes]] = deque()
        self.keys: dict[tuple[int, int], bytes | None] = {}  # position -> idempotency key
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.start: tuple[int, int] | None = None  # complete after this position

    def begin(self, position: str) -> None:
        if self.start is None:
            self.start = parse_position(position)

    def add(self, position: str, raw: bytes, key: bytes | None = None) -> None:
        pair = parse_position(position)
        self.entries.append((pair, position, raw))
        self.keys[pair] = key
        self.bytes += len(raw)
        while len(self.entries) > self.size or self.bytes > self.max_bytes:
            self.start, _, dropped = self.entries.popleft()
            self.keys.pop(self.start, None)
            self.bytes -= len(dropped)

    def covers(self, at: tuple[int, int], upto: tuple[int, int]) -> bool:
        """Every entry after ``at`` up to ``upto`` is here, and ``at`` is a position
        the stream had (not one that a failover lost)."""
        return (self.start is not None and self.start <= at <= upto
                and (at == self.start or at in self.keys))

    def holds(self, position: str, raw: bytes) -> bool:
        """This very entry (position and message) was delivered and is remembered."""
        pair = parse_position(position)
        if pair not in self.keys:
            return False
        return any(kept == raw for at, _, kept in reversed(self.entries) if at == pair)

    def cut(self, after: tuple[int, int]) -> list[tuple[str, bytes, bytes | None]]:
        """Forget the entries after ``after`` (the stream lost them); returns them."""
        gone = []
        while self.entries and self.entries[-1][0] > after:
            pair, position, raw = self.entries.pop()
            gone.append((position, raw, self.keys.pop(pair, None)))
            self.bytes -= len(raw)
        if self.start is not None and self.start > after:
            self.start = after
        return gone[::-1]

    def between(self, at: tuple[int, int], upto: tuple[int, int]) -> list[tuple[str, bytes]]:
        """Entries with ``at < position <= upto``, oldest first (ask covers() first)."""
        rows = []
        for pair, position, raw in reversed(self.entries):
            if pair <= at:
                break
            if pair <= upto:
                rows.append((position, raw))
        return rows[::-1]


def common_point(rows: list[tuple[str, bytes]], recent: Recent, complete: bool) -> str | None:
    """Where to read on after a reconnect: the newest of ``rows`` (a page of the
    stream's entries at or before the cursor, newest first; ``complete`` when
    it reaches the stream's start) that this daemon delivered, or that is older
    than what it remembers. None: look at the next page."""
    for position, raw in rows:
        if recent.holds(position, raw) or recent.start is None or (
                parse_position(position) <= recent.start):
            return position
    return ZERO if complete else None  # ZERO: all the stream has is new


class Tail:
    def __init__(self, *, history: History, deliver: Callable[..., None],
                 dropped: Callable[[str], None], sleep: Callable[[float], None],
                 block_seconds: float,
                 audience: Callable[[events.Message], frozenset[str]] = lambda m: frozenset()):
        """``deliver(message, position, skip=sids)``; ``audience(message)``: the
        sockets a message would reach now (see the module's text)."""
        self.history = history
        self.deliver = deliver
        self.dropped = dropped
        self.sleep = sleep
        self.audience = audience
        self.redelivered: dict[bytes, frozenset[str]] = {}  # lost key -> sockets that had it
        self.block_ms = max(1, int(block_seconds * 1000))
        self.cursor: str | None = None  # None until the stream was first reached
        self.live = False
        self.running = True
        self.outage = Outage("history tail", log)
        self.recent = Recent(min(RECENT, history.size))

    def run(self) -> None:
        persist(self._follow, outage=self.outage, sleep=self.sleep, running=lambda: self.running,
                lost=self._lost)

    def _lost(self) -> None:
        self.live = False

    def _follow(self) -> None:
        if self.cursor is None:
            self.cursor = self.history.position()  # live from now on
            self.recent.begin(self.cursor)
        else:
            self._realign()
        self.history.publish_retention()
        self.live = True
        self.outage.recovered()
        try:
            while self.running:
                for position, raw, key in self.history.read_new(self.cursor, self.block_ms,
                                                                BATCH):
                    self._hand_over(position, raw, key)
                    self.cursor = position
        finally:
            self.live = False

    def _realign(self) -> None:
        """After a reconnect: read on from what the stream and this daemon share."""
        point, below = None, self.cursor
        while point is None:
            rows = self.history.upto(below, REALIGN_PAGE)
            point = common_point(rows, self.recent, len(rows) < REALIGN_PAGE)
            below = "(" + rows[-1][0] if rows else below
        if point == self.cursor:
            return
        lost = self.recent.cut(parse_position(point))
        self.redelivered = {key: self._had(raw) for _, raw, key in lost if key is not None}
        log.warning("the history lost entries this daemon had read (a failover to a replica "
                    "that lacked them, or a Redis restarted without them); reading on from "
                    "the newest entry it kept",
                    extra={"fields": {"cursor": self.cursor, "from": point, "lost": len(lost)}})
        self.cursor = point

    def _had(self, raw: bytes) -> frozenset[str]:
        try:
            return self.audience(events.parse(raw))
        except events.BadMessage:
            return frozenset()

    def _hand_over(self, position: str, raw: bytes, key: bytes | None = None) -> None:
        self.recent.add(position, raw, key)
        try:
            message = events.parse(raw)
        except events.BadMessage as exc:
            log.warning("history entry dropped", extra={"fields": {
                "position": position, "why": str(exc)}})
            self.dropped(exc.kind)
            return
        if message.canary is not None:
            return
        skip = self.redelivered.pop(key, frozenset()) if key is not None else frozenset()
        try:
            self.deliver(message, position, skip=skip)
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the rest
            log.exception("delivery failed", extra={"fields": {"event": message.event}})
            self.dropped("delivery_error")

    def stop(self) -> None:
        self.running = False
