"""This daemon's part of presence: its sockets in presence rooms, the leave delay, delivery.

The socket layer reports each socket entering its rooms and leaving; the
roster counts, per (room, user), the sockets this daemon holds. The first
one makes the daemon hold the user in Redis (:mod:`bridge.presence`), which
announces ``joined`` when no daemon held the user yet. When the last one
goes, the hold is dropped only after ``leave_delay`` seconds, and only if no
socket came back meanwhile, so a page reload is neither a leave nor a join;
``left`` is announced when no other daemon holds the user either.

A single loop (``run``) does the Redis work in batches, off the connect
path: new holds, due releases, refreshing every hold (0.2 ttl), and sweeping
the rooms this daemon serves for users of daemons that died (0.2 ttl). A
second loop (``listen``) receives the announcements of every daemon into a
per-room outbox; a third (``send``) delivers each room's events, in order,
to this daemon's sockets in the room, once per socket: every event is its
own packet, but a socket gets all the events of one pass in one write. A
change in a room of N sockets costs N writes; coalescing a pass turns the
N²/2 writes of N users joining into passes x N. The passes are paced so
that they take at most a third of the process while it has other work to do
(``PACE``: connects, pings, PHP's events), and follow each other every
``SEND_SECONDS`` while it has none (:func:`pause_after`): in a room of 10,000
a pass costs 30-85 ms of CPU, all but a little in the kernel's send, so a
fixed third would keep every change waiting 0.1-0.3 s on an idle daemon.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable

import redis

from bridge import logs, presence
from bridge.outage import Outage

log = logs.get("presence")

TICK_SECONDS = 0.02
SEND_SECONDS = 0.02  # the shortest time between two delivery passes
PACE = 2.0  # after a pass of C CPU seconds on a busy process, the next one waits PACE x C
STOP_MARGIN = 0.5  # a stopping daemon releases what is left this long before its deadline
MAX_LABELLED_ROOMS = 100
OTHER_ROOMS = "other"
NOT_IN_ROOM = {"error": "not_in_room"}
NOT_PRESENCE_ROOM = {"error": "not_presence_room"}
UNAVAILABLE = {"error": "unavailable"}


def pause_after(pass_cpu: float, busy: float) -> float:
    """Seconds between two delivery passes: ``PACE`` x the last pass's CPU, scaled by
    ``busy``, the share of a core the rest of the process used during the last pause
    (1: it had work all along, so presence yields two thirds; 0: idle, no wait)."""
    return max(SEND_SECONDS, PACE * pass_cpu * min(1.0, max(0.0, busy)))


def matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a room is a presence room (glob patterns, case-sensitive)."""
    return lambda room: any(fnmatch.fnmatchcase(room, pattern) for pattern in patterns)


@dataclasses.dataclass
class _Hold:
    sockets: int = 0
    held: bool = False  # this daemon's hold is in Redis
    leave_at: float | None = None
    generation: int = 0  # tells a refresh entry of an earlier hold from the current one


class Roster:
    def __init__(self, *, shared: presence.SharedPresence, patterns: tuple[str, ...],
                 leave_delay: float, ttl: float, emit: Callable[[str, dict], int],
                 online_gauge, events_sent, sleep: Callable[[float], None]):
        self.shared = shared
        self.is_presence_room = matcher(patterns)
        self.leave_delay = leave_delay
        self.period = ttl * 0.2
        self.emit = emit
        self.online = OnlineGauge(online_gauge)
        self.events_sent = events_sent
        self.sleep = sleep
        self.running = True
        self._holds: dict[tuple[str, str], _Hold] = {}
        self._sockets: dict[str, tuple[str, tuple[str, ...]]] = {}  # sid -> user, rooms
        self._new: set[tuple[str, str]] = set()
        self._leaving: set[tuple[str, str]] = set()
        self._refresh: deque[tuple[tuple[str, str], int]] = deque()  # key, generation
        self._sweep: list[str] = []  # rooms left to sweep in this round
        self._swept: dict[str, int] = {}  # room -> online count, this round
        self._round_started = 0.0
        self._round_size = 0
        self._last_slice = time.monotonic()
        self._outbox: dict[str, list[dict]] = {}  # room -> announcements not yet sent
        self._release_by = math.inf  # a stopping daemon: every hold due by then
        self._outage = Outage("presence state", log)
        self._listen_outage = Outage("presence announcements", log)

    # --- called by the socket layer ---

    def entered(self, sid: str, user, rooms) -> None:
        """A socket of ``user`` (its JSON value) is now in ``rooms``."""
        rooms = tuple(room for room in rooms if self.is_presence_room(room))
        if not rooms:
            return
        member = presence.user_json(user)
        self._sockets[sid] = (member, rooms)
        for room in rooms:
            hold = self._holds.setdefault((room, member), _Hold())
            hold.sockets += 1
            hold.leave_at = None
            if not hold.held:
                self._new.add((room, member))

    def left(self, sid: str) -> None:
        member, rooms = self._sockets.pop(sid, (None, ()))
        for room in rooms:
            hold = self._holds[(room, member)]
            hold.sockets -= 1
            if hold.sockets == 0:
                hold.leave_at = time.monotonic() + self.leave_delay
                self._leaving.add((room, member))

    def query(self, room: str) -> dict:
        """The answer to a socket's ``presence`` event (membership checked by the caller)."""
        if not self.is_presence_room(room):
            return NOT_PRESENCE_ROOM
        try:
            users = presence.online(self.shared.client, self.shared.channel, room)
        except redis.RedisError:
            return UNAVAILABLE
        return {"room": room, "users": users}

    # --- the Redis loop ---

    def run(self) -> None:
        while self.running:
            try:
                self._hold_new()
                self._release_due()
                self._refresh_and_sweep()
                self._outage.recovered()
            except Exception as exc:  # noqa: BLE001 - presence must outlive any fault
                self.sleep(self._outage.lost(exc))
            self.sleep(TICK_SECONDS)

    def _hold_new(self) -> None:
        if not self._new:
            return
        keys, self._new = self._new, set()
        try:
            fresh = [k for k in keys if self._holds.get(k) and self._holds[k].sockets]
            self.shared.hold(_by_room(fresh))
            for key in fresh:
                hold = self._holds[key]
                hold.held, hold.generation = True, hold.generation + 1
                self._refresh.append((key, hold.generation))
        except Exception:
            self._new |= {k for k in keys if k in self._holds and not self._holds[k].held}
            raise

    def _release_due(self) -> None:
        now = time.monotonic()
        if now >= self._release_by:
            now = math.inf
        due = [k for k in self._leaving if self._holds[k].leave_at is None or
               self._holds[k].leave_at <= now]
        if not due:
            return
        gone = [k for k in due if not self._holds[k].sockets and self._holds[k].held]
        if gone:
            self.shared.release(gone)  # on failure the keys stay due, retried
        for key in due:
            hold = self._holds[key]
            self._leaving.discard(key)
            if hold.sockets:  # came back (also while Redis answered): hold (again)
                if key in gone:
                    hold.held = False
                    self._new.add(key)
            elif hold.leave_at is not None:
                del self._holds[key]

    def _refresh_and_sweep(self) -> None:
        """Each tick a slice: every hold refreshed, every room swept once per period.

        Spread out, so that neither this loop nor Redis is busy for long at
        once (10,000 holds at a time kept Redis busy for ~150 ms).
        """
        now = time.monotonic()
        share, self._last_slice = (now - self._last_slice) / self.period, now
        batch = []
        for _ in range(min(len(self._refresh), math.ceil(len(self._refresh) * share))):
            key, generation = self._refresh.popleft()
            hold = self._holds.get(key)
            if hold is not None and hold.held and hold.generation == generation:
                batch.append(key)
                self._refresh.append((key, generation))
        if batch:
            self.shared.hold(_by_room(batch))
        self._sweep_slice(now, share)

    def _sweep_slice(self, now: float, share: float) -> None:
        if not self._sweep:
            if now - self._round_started < self.period:
                return
            self.online.update(self._swept)
            self._round_started, self._swept = now, {}
            self._sweep = sorted({room for room, _ in self._holds}, reverse=True)
            self._round_size = len(self._sweep)
        rooms = [self._sweep.pop() for _ in range(min(
            len(self._sweep), max(1, math.ceil(self._round_size * share))))]
        self._swept.update(self.shared.sweep(rooms))

    # --- announcements of every daemon ---

    def listen(self, client: redis.Redis) -> None:
        while self.running:
            try:
                self._listen(client)
            except Exception as exc:  # noqa: BLE001 - delivery must outlive any fault
                self.sleep(self._listen_outage.lost(exc))

    def _listen(self, client: redis.Redis) -> None:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(presence.announcements(self.shared.channel))
            self._listen_outage.recovered()
            while self.running:
                item = pubsub.get_message(timeout=0.5)
                if item is not None and item.get("type") == "message":
                    self.deliver(item["data"])
        finally:
            pubsub.close()

    def deliver(self, raw: bytes) -> None:
        """Queue one announcement for the room's next delivery pass."""
        try:
            payload = json.loads(raw)
            room = payload["room"]
            self._outbox.setdefault(room, []).append(payload)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("presence announcement dropped: not one of ours")

    def send(self) -> None:
        """Delivery passes, paced (see the module docstring)."""
        busy = 1.0  # nothing measured yet: assume the process has other work
        while self.running:
            started = time.thread_time()
            try:
                self.send_pass()
            except Exception:  # noqa: BLE001 - delivery must outlive any fault
                log.exception("presence delivery pass failed")
            cpu, wall = time.process_time(), time.monotonic()
            self.sleep(pause_after(time.thread_time() - started, busy))
            busy = (time.process_time() - cpu) / max(1e-6, time.monotonic() - wall)

    def send_pass(self) -> None:
        """Send every room's queued announcements, in the order they came."""
        outbox, self._outbox = self._outbox, {}
        for room, payloads in outbox.items():
            sent = self.emit(room, payloads)
            if sent:
                for payload in payloads:
                    self.events_sent.labels("joined" if "joined" in payload else "left").inc(sent)

    # --- graceful stop ---

    def drain(self, deadline: float) -> None:
        """The daemon is stopping: release every hold when its leave delay is over
        (``left`` announced as usual, no wait for ``presence_ttl``), and what is
        left shortly before ``deadline``. :attr:`holding` says when it is done."""
        self._release_by = deadline - STOP_MARGIN

    @property
    def holding(self) -> int:
        """Users held (or about to be released) by this daemon, over all rooms."""
        return len(self._holds)

    def stop(self) -> None:
        self.running = False


def _by_room(keys) -> dict[str, list[str]]:
    rooms: dict[str, list[str]] = defaultdict(list)
    for room, user in keys:
        rooms[room].append(user)
    return rooms


class OnlineGauge:
    """Online users per room, on at most MAX_LABELLED_ROOMS labels plus "other"."""

    def __init__(self, gauge):
        self.gauge = gauge
        self.labelled: set[str] = set()

    def update(self, counts: dict[str, int]) -> None:
        for room in self.labelled - counts.keys():
            self.gauge.remove(room)
            self.labelled.discard(room)
        other = 0
        for room, count in sorted(counts.items()):
            if room not in self.labelled and len(self.labelled) < MAX_LABELLED_ROOMS:
                self.labelled.add(room)
            if room in self.labelled:
                self.gauge.labels(room).set(count)
            else:
                other += count
        self.gauge.labels(OTHER_ROOMS).set(other)
