"""The live tail of the history: every new entry, in order, to this daemon's sockets.

One loop per daemon reads the stream with ``XREAD BLOCK`` from its *cursor*,
the position of the last entry it delivered. After a lost connection (a
Redis restart, a failover) it reads on from the cursor, so an outage delays
events but loses none of those the stream still holds.

The cursor is also the switch point for sockets that replay the history
(:mod:`bridge.replay`): an entry is delivered and the cursor moved past it in
one step, with no yield in between, so "everything up to the cursor has been
delivered to the rooms" holds whenever another greenlet looks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from bridge import events, logs
from bridge.history import History, parse_position
from bridge.outage import Outage, persist

log = logs.get("tail")

BATCH = 500  # entries per read
RECENT = 1000  # entries the tail remembers, for sockets that come back a moment later
RECENT_BYTES = 8 << 20  # and at most this much of their messages


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
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.start: tuple[int, int] | None = None  # complete after this position

    def begin(self, position: str) -> None:
        if self.start is None:
            self.start = parse_position(position)

    def add(self, position: str, raw: bytes) -> None:
        self.entries.append((parse_position(position), position, raw))
        self.bytes += len(raw)
        while len(self.entries) > self.size or self.bytes > self.max_bytes:
            self.start, _, dropped = self.entries.popleft()
            self.bytes -= len(dropped)

    def covers(self, at: tuple[int, int], upto: tuple[int, int]) -> bool:
        return self.start is not None and self.start <= at <= upto

    def between(self, at: tuple[int, int], upto: tuple[int, int]) -> list[tuple[str, bytes]]:
        """Entries with ``at < position <= upto``, oldest first (ask covers() first)."""
        rows = []
        for pair, position, raw in reversed(self.entries):
            if pair <= at:
                break
            if pair <= upto:
                rows.append((position, raw))
        return rows[::-1]


class Tail:
    def __init__(self, *, history: History, deliver: Callable[[events.Message, str], None],
                 dropped: Callable[[str], None], sleep: Callable[[float], None],
                 block_seconds: float):
        self.history = history
        self.deliver = deliver
        self.dropped = dropped
        self.sleep = sleep
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
        self.history.publish_retention()
        self.live = True
        self.outage.recovered()
        try:
            while self.running:
                for position, raw in self.history.read_new(self.cursor, self.block_ms, BATCH):
                    self._hand_over(position, raw)
                    self.cursor = position
        finally:
            self.live = False

    def _hand_over(self, position: str, raw: bytes) -> None:
        self.recent.add(position, raw)
        try:
            message = events.parse(raw)
        except events.BadMessage as exc:
            log.warning("history entry dropped", extra={"fields": {
                "position": position, "why": str(exc)}})
            self.dropped(exc.kind)
            return
        if message.canary is not None:
            return
        try:
            self.deliver(message, position)
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the rest
            log.exception("delivery failed", extra={"fields": {"event": message.event}})
            self.dropped("delivery_error")

    def stop(self) -> None:
        self.running = False
