"""The event history: one Redis Stream per channel, and positions in it.

Every event the PHP Emitter or ``session-bridge emit`` publishes is appended
to a stream; its entry id is the event's *position* (``"1733100000000-0"``,
opaque to users). Daemons follow the stream live (:mod:`bridge.tail`) and
replay it to sockets that come back (:mod:`bridge.replay`). Keys of a channel
share a hash tag, so that they live on one slot of a Redis Cluster and the
append script may touch them together::

    {<channel>}:history     the stream; field ``m`` holds the message JSON (docs/contract.md 5)
    {<channel>}:retention   hash size/seconds: what the daemons keep; read by the script
    {<channel>}:secret      the key that signs recovery ids (bridge.recovery)
    {<channel>}:sent:<key>  an idempotency key's first position (the append script)

Durability with replicas (a Sentinel master): Redis replicates
asynchronously, so the master dying can take its newest appends with it.
An append that names ``replicas`` waits (``WAIT``, on the connection that
appended) until that many replicas have it, and raises NotReplicated when
they do not answer in time: the event may or may not survive, and retrying
with the same idempotency key cannot make a second one.

Retention (``lua/append.lua``): an entry goes only when it is both beyond the
last ``history_size`` entries and older than ``history_seconds``; the script
records how far it trimmed. Redis 6.2 or newer is needed (exclusive ranges);
with Redis before 7 (no ``entries-added``) a position older than the first
entry is always taken as trimmed.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import redis

DEFAULT_SIZE = 10_000
DEFAULT_SECONDS = 300.0
ZERO = "0-0"
FIELD = b"m"
KEY_FIELD = b"k"  # the idempotency key an entry was appended with
MAX_KEY_BYTES = 200  # an idempotency key's (the PHP Emitter's limit too)
REPLICA_TIMEOUT = 1.0  # seconds an append waits for its replicas
_POSITION = re.compile(r"(\d{1,20})-(\d{1,20})")


class HistoryUnavailable(Exception):
    """Redis did not answer a history command."""


class NotReplicated(HistoryUnavailable):
    """The master took the append, but fewer replicas than asked acknowledged it
    in time: it may be lost in a failover. Retry with the same idempotency key."""

    def __init__(self, message: str, position: str):
        super().__init__(message)
        self.position = position


def script(name: str) -> str:
    """One of the Lua scripts shipped in ``bridge/lua`` (the PHP Emitter has copies)."""
    return resources.files("bridge").joinpath("lua", name).read_text()


def parse_position(text) -> tuple[int, int] | None:
    """``"ms-seq"`` as a comparable pair; None when it is not a position."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    match = _POSITION.fullmatch(text)
    return (int(match[1]), int(match[2])) if match else None


def format_position(pair: tuple[int, int]) -> str:
    return f"{pair[0]}-{pair[1]}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class Keys:
    stream: str
    retention: str
    secret: str
    sent_prefix: str

    @classmethod
    def of(cls, channel: str) -> Keys:
        tag = "{" + channel + "}"
        return cls(f"{tag}:history", f"{tag}:retention", f"{tag}:secret", f"{tag}:sent:")

    def sent(self, key: str) -> str:
        """The record of one idempotency key."""
        return self.sent_prefix + key


@dataclasses.dataclass(frozen=True)
class Window:
    """What the stream can still replay: entries after ``trimmed`` up to ``newest``."""

    trimmed: tuple[int, int]
    newest: tuple[int, int]

    def covers(self, position: tuple[int, int]) -> bool:
        return self.trimmed <= position <= self.newest


class History:
    """Appends to and reads one channel's stream; every method may raise HistoryUnavailable."""

    def __init__(self, client: redis.Redis, channel: str, *, size: int = DEFAULT_SIZE,
                 seconds: float = DEFAULT_SECONDS, replicas: int = 0,
                 replica_timeout: float = REPLICA_TIMEOUT):
        self.client = client
        self.keys = Keys.of(channel)
        self.size = size
        self.seconds = seconds
        self.replicas = replicas
        self.replica_timeout = replica_timeout
        self._append = client.register_script(script("append.lua"))
        self._position = client.register_script(script("position.lua"))

    def append(self, message: str, key: str | None = None) -> str:
        """Add one message (already checked); returns its position. With ``key``, an
        append that used the same key within ``history_seconds`` is not repeated:
        its position is returned. Raises NotReplicated (see the module's text).

        The WAIT must run on the connection that appended (it waits for that
        connection's own writes): give this History a client of one connection."""
        keys, args = [self.keys.stream, self.keys.retention], [message, DEFAULT_SIZE,
                                                               DEFAULT_SECONDS]
        if key is not None:
            keys.append(self.keys.sent(key))
            args.append(key)
        position = _text(self._call(self._append, keys, args))
        if self.replicas > 0:
            self._await_replicas(position)
        return position

    def _await_replicas(self, position: str) -> None:
        timeout_ms = max(1, int(self.replica_timeout * 1000))
        try:
            acked = int(self.client.execute_command("WAIT", self.replicas, timeout_ms))
        except redis.RedisError as exc:
            raise NotReplicated(f"no answer to WAIT: {exc}", position) from None
        if acked < self.replicas:
            raise NotReplicated(f"{acked} of {self.replicas} replicas acknowledged "
                                f"within {self.replica_timeout:g} s", position)

    def position(self) -> str:
        return _text(self._call(self._position, [self.keys.stream], []))

    def publish_retention(self) -> None:
        """Tell appenders what this daemon keeps (the last daemon to start wins)."""
        self._call(self.client.hset, self.keys.retention,
                   mapping={"size": self.size, "seconds": self.seconds})

    def window(self) -> Window:
        """What can still be replayed. Exact for the appends' own trimming; when
        entries went some other way (XTRIM or XDEL by hand, a lost key), every
        position before the first entry counts as trimmed."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xinfo_stream(self.keys.stream).hmget(self.keys.retention, "trimmed", "removed")
        info, (trimmed, removed) = self._call(pipe.execute, raise_on_error=False)
        if isinstance(info, redis.ResponseError):
            if "no such key" not in str(info).lower():
                raise HistoryUnavailable(str(info))
            return Window(parse_position(trimmed) or (0, 0), (0, 0))
        newest = parse_position(info.get("last-generated-id")) or (0, 0)
        floor = max(parse_position(trimmed) or (0, 0),
                    parse_position(info.get("max-deleted-entry-id")) or (0, 0))
        added = info.get("entries-added")  # Redis 7+
        if added is None or int(added) - int(info["length"]) != int(removed or 0):
            first = info.get("first-entry")
            floor = max(floor, (parse_position(first[0]) if first else None) or newest)
        return Window(floor, newest)

    def retention(self) -> dict:
        """What the appends keep, as the daemons last wrote it (defaults if none did)."""
        size, seconds = self._call(self.client.hmget, self.keys.retention, "size", "seconds")
        return {"size": int(size or DEFAULT_SIZE), "seconds": float(seconds or DEFAULT_SECONDS)}

    def read(self, after: str, upto: str, count: int) -> list[tuple[str, bytes]]:
        """Entries with ``after < position <= upto``, oldest first, at most ``count``."""
        rows = self._call(self.client.xrange, self.keys.stream, "(" + after, upto, count)
        return [(_text(entry_id), fields.get(FIELD, b"")) for entry_id, fields in rows]

    def read_new(self, after: str, block_ms: int,
                 count: int) -> list[tuple[str, bytes, bytes | None]]:
        """Entries after ``after``, waiting up to ``block_ms`` for the first one, each
        with its idempotency key (None without one)."""
        reply = self._call(self.client.xread, {self.keys.stream: after}, count, block_ms)
        rows = reply[0][1] if reply else []
        return [(_text(entry_id), fields.get(FIELD, b""), fields.get(KEY_FIELD))
                for entry_id, fields in rows]

    def upto(self, position: str, count: int) -> list[tuple[str, bytes]]:
        """Entries at or before ``position``, newest first, at most ``count``."""
        rows = self._call(self.client.xrevrange, self.keys.stream, position, "-", count)
        return [(_text(entry_id), fields.get(FIELD, b"")) for entry_id, fields in rows]

    def holds(self, position: str) -> bool:
        """Whether the stream has an entry at exactly ``position``."""
        return bool(self._call(self.client.xrange, self.keys.stream, position, position, 1))

    def tail(self, count: int) -> list[tuple[str, bytes]]:
        rows = self._call(self.client.xrevrange, self.keys.stream, "+", "-", count)
        return [(_text(entry_id), fields.get(FIELD, b"")) for entry_id, fields in rows[::-1]]

    def length(self) -> int:
        return int(self._call(self.client.xlen, self.keys.stream))

    @staticmethod
    def _call(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            raise HistoryUnavailable(str(exc) or type(exc).__name__) from None
