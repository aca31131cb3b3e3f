"""Limits counted across the workers of one daemon, in memory they all share.

With ``--workers N`` the parent creates one anonymous shared file (memfd)
before it starts the workers; each maps it. It holds:

- sockets per user: for each user (a 64-bit hash of the id) one count per
  worker, so a worker that dies loses its column (:meth:`Quota.clear_worker`)
  and the others' counts stay right;
- token buckets per address for the three per-address limits (TCP connections
  at accept, new Engine.IO sessions, Socket.IO handshakes), so an address gets
  ``handshake_rate`` from the daemon, not from each worker.

Both are open-addressed tables with a bounded probe; a POSIX record lock on
the file (held for a few microseconds, never across I/O) makes each update
atomic between processes. Standard library only; no greenlet ever waits here.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import time
from collections.abc import Callable
from fcntl import LOCK_EX, LOCK_UN, lockf

USER_SLOTS = 1 << 17  # users with sockets open at once, with room to probe
BUCKET_SLOTS = 1 << 15  # addresses per limit remembered at once
PROBE = 32  # slots looked at before a user is not counted (table full)
BUCKET_PROBE = 8  # slots looked at before the stalest bucket is reused
LIMITS = ("accept", "transport", "handshake")


def _key(text: str) -> int:
    """A 64-bit hash equal in every process (Python's own hash() is salted)."""
    return int.from_bytes(_blake2b(text.encode(), digest_size=8).digest(), "little") or 1


_blake2b = hashlib.blake2b


class Quota:
    """The shared tables of one daemon; ``worker`` is this process's column."""

    def __init__(self, fd: int, workers: int, worker: int = -1):
        self.fd, self.workers, self.worker = fd, workers, worker
        self._map = mmap.mmap(fd, size(workers))
        view = memoryview(self._map)
        offset = 0
        self._user_keys = view[offset:offset + 8 * USER_SLOTS].cast("Q")
        offset += 8 * USER_SLOTS
        self._counts = []
        for _ in range(workers):
            self._counts.append(view[offset:offset + 4 * USER_SLOTS].cast("I"))
            offset += 4 * USER_SLOTS
        self._buckets = {}
        for name in LIMITS:
            keys = view[offset:offset + 8 * BUCKET_SLOTS].cast("Q")
            offset += 8 * BUCKET_SLOTS
            state = view[offset:offset + 16 * BUCKET_SLOTS].cast("d")  # tokens, stamp
            offset += 16 * BUCKET_SLOTS
            self._buckets[name] = (keys, state)

    @classmethod
    def create(cls, workers: int) -> Quota:
        """The parent's side: a new zeroed table, its fd inheritable by the workers."""
        fd = os.memfd_create("session-bridge-quota", 0)
        os.ftruncate(fd, size(workers))
        os.set_inheritable(fd, True)
        return cls(fd, workers)

    def _locked(self):
        return _Lock(self.fd)

    # --- sockets per user ---

    def add_socket(self, user: str) -> None:
        self._change(user, +1)

    def remove_socket(self, user: str) -> None:
        self._change(user, -1)

    def sockets_of(self, user: str) -> int:
        key, keys = _key(user), self._user_keys
        start = key % USER_SLOTS
        lockf(self.fd, LOCK_EX, 1)
        try:
            for slot in range(start, start + PROBE):
                slot %= USER_SLOTS
                found = keys[slot]
                if found == key:
                    return sum(column[slot] for column in self._counts)
                if found == 0:
                    return 0
        finally:
            lockf(self.fd, LOCK_UN, 1)
        return 0

    def _change(self, user: str, step: int) -> None:
        key, keys = _key(user), self._user_keys
        column = self._counts[self.worker]
        with self._locked():
            free = None
            for slot in _probe(key, USER_SLOTS, PROBE):
                if keys[slot] == key:
                    column[slot] = max(0, column[slot] + step)
                    return
                if keys[slot] == 0:
                    free = slot if free is None else free
                    break
                if free is None and not any(c[slot] for c in self._counts):
                    free = slot  # a user whose sockets are all gone: reusable
            if free is not None and step > 0:
                keys[free] = key
                for other in self._counts:
                    other[free] = 0
                column[free] = step

    def clear_worker(self, worker: int) -> None:
        """A worker died: its sockets are gone (the parent calls this before a restart)."""
        with self._locked():
            self._counts[worker][:] = memoryview(bytearray(4 * USER_SLOTS)).cast("I")

    # --- token buckets ---

    def limiter(self, name: str, rate: float,
                clock: Callable[[], float] = time.monotonic) -> SharedLimiter:
        return SharedLimiter(self, name, rate, clock)

    def take(self, name: str, address: str, rate: float, burst: float, now: float) -> bool:
        key = _key(address)
        keys, state = self._buckets[name]
        with self._locked():
            chosen, stalest = None, None
            for slot in _probe(key, BUCKET_SLOTS, BUCKET_PROBE):
                if keys[slot] == key or keys[slot] == 0:
                    chosen = slot
                    break
                if stalest is None or state[2 * slot + 1] < state[2 * stalest + 1]:
                    stalest = slot
            if chosen is None or keys[chosen] != key:
                chosen = stalest if chosen is None else chosen
                keys[chosen] = key
                state[2 * chosen], state[2 * chosen + 1] = burst, now
            tokens = min(burst, state[2 * chosen] + (now - state[2 * chosen + 1]) * rate)
            allowed = tokens >= 1.0
            state[2 * chosen] = tokens - 1.0 if allowed else tokens
            state[2 * chosen + 1] = now
            return allowed


class SharedLimiter:
    """:class:`bridge.ratelimit.HandshakeLimiter`'s interface on a shared table."""

    def __init__(self, quota: Quota, name: str, rate: float, clock: Callable[[], float]):
        self.quota, self.name, self.rate, self.burst = quota, name, rate, 2.0 * rate
        self.clock = clock

    def allow(self, address: str) -> bool:
        if self.rate <= 0:
            return True
        return self.quota.take(self.name, address, self.rate, self.burst, self.clock())

    def forget(self, key: str) -> None:
        pass  # buckets age out of the table by themselves


class _Lock:
    """An exclusive POSIX record lock on the table's file, for one update."""

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self):
        lockf(self.fd, LOCK_EX, 1)

    def __exit__(self, *exc):
        lockf(self.fd, LOCK_UN, 1)


def _probe(key: int, slots: int, count: int):
    start = key % slots
    return ((start + i) % slots for i in range(count))


def size(workers: int) -> int:
    users = USER_SLOTS * (8 + 4 * workers)
    return users + len(LIMITS) * BUCKET_SLOTS * 24
