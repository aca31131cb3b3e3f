"""How a loop that lives on a Redis connection goes through an outage.

The event relay, the history tail, the session watch and the presence
listener each hold a Redis connection; when Redis goes away they retry with a
short backoff (0.1 s doubling to 0.5 s, so that service is back within a
second of Redis), log the loss once, and log the recovery with the length of
the gap. :func:`persist` is their one retry loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

FIRST_DELAY = 0.1
MAX_DELAY = 0.5


class Outage:
    def __init__(self, what: str, log: logging.Logger):
        self.what = what
        self.log = log
        self.lost_at: float | None = None
        self.delay = FIRST_DELAY

    def lost(self, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before the next try."""
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            self.log.warning(f"{self.what} lost; retrying",
                             exc_info=not isinstance(exc, (redis.RedisError, OSError)),
                             extra={"fields": {"error": str(exc) or type(exc).__name__}})
        delay, self.delay = self.delay, min(self.delay * 2, MAX_DELAY)
        return delay

    def recovered(self) -> bool:
        """Record a success; True when it ends an outage."""
        self.delay = FIRST_DELAY
        if self.lost_at is None:
            return False
        self.log.warning(f"{self.what} back", extra={"fields": {
            "gap_seconds": round(time.monotonic() - self.lost_at, 3)}})
        self.lost_at = None
        return True


def persist(loop: Callable[[], None], *, outage: Outage, sleep: Callable[[float], None],
            running: Callable[[], bool], lost: Callable[[], None]) -> None:
    """Run ``loop`` until it returns or ``running()`` turns false; after any fault
    call ``lost()``, wait the outage's backoff and run it again (a loop that
    lives on Redis must outlive any fault)."""
    while running():
        try:
            loop()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            lost()
            sleep(outage.lost(exc))
        else:
            return
