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

from collections.abc import Callable

from bridge import events, logs
from bridge.history import History
from bridge.outage import Outage

log = logs.get("tail")

BATCH = 500  # entries per read


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

    def run(self) -> None:
        while self.running:
            try:
                self._follow()
            except Exception as exc:  # noqa: BLE001 - delivery must outlive any fault
                self.live = False
                self.sleep(self.outage.lost(exc))
            else:
                return

    def _follow(self) -> None:
        if self.cursor is None:
            self.cursor = self.history.position()  # live from now on
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
