"""Handshakes per second per client address: a token bucket for each address.

Checked before anything else in a handshake (no cookie parsing, no Redis), so
a flood from one address costs a dictionary look-up per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class HandshakeLimiter:
    """``rate`` attempts per second per key (an address, a socket), burst ``2 * rate``.

    The table forgets idle addresses once it holds ``max_addresses``, so memory
    stays bounded whatever number of addresses a flood uses.
    """

    def __init__(self, rate: float, max_addresses: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = 2.0 * rate
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, address: str) -> bool:
        """Take one token for ``address``; False when it has none left."""
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens, stamp = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self._buckets[address] = (tokens, now)
            return False
        if address not in self._buckets and len(self._buckets) >= self.max_addresses:
            self._forget_full(now)
        self._buckets[address] = (tokens - 1.0, now)
        return True

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def _forget_full(self, now: float) -> None:
        """Drop addresses whose bucket has refilled; they are as good as new."""
        refill = self.burst / self.rate
        self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < refill}
        if len(self._buckets) >= self.max_addresses:
            self._buckets.clear()
