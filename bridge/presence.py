"""Who is online in the presence rooms: the state every daemon (and PHP) shares in Redis.

Keys, all with the channel as hash tag so that one cluster slot holds them
and one script may touch several:

    {<channel>}:presence:<room>          sorted set: user (as JSON) -> expiry (ms)
    {<channel>}:presence-holders:<JSON [room, user]>
                                         hash: daemon node -> expiry (ms)

A member of the sorted set is a user whose ``joined`` was announced and whose
``left`` was not yet: PHP's ``Emitter::online()`` and ``session-bridge
presence`` read exactly that set. Its score is the latest expiry among the
daemons holding the user. Each daemon holding a user's sockets in the room
has a field in the user's hash and refreshes it (with the score) well within
``presence_ttl``; the entries of a daemon that died expire, and a surviving
daemon's sweep then announces those users as left (unless another daemon
still holds them). Every key also expires as a whole when nobody refreshes
it, so a Redis without any daemon forgets everyone within ``presence_ttl``.

Times come from Redis (``TIME`` inside the scripts), so daemons and PHP never
compare clocks. ``joined`` and ``left`` are published from inside the
scripts, so announcements reach subscribers in the order the state changed.
"""

from __future__ import annotations

import json
from typing import Any

import redis

# KEYS[1] room set, KEYS[2..] the holders hashes of ARGV[6..] (users as JSON).
# ARGV: node, entry life (ms), key life (ms), presence channel, room as JSON.
# Returns how many of the users were announced as joined.
_HOLD = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local joined = 0
for i = 2, #KEYS do
  local user = ARGV[i + 4]
  redis.call('HSET', KEYS[i], ARGV[1], expiry)
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
  if not redis.call('ZSCORE', KEYS[1], user) then
    joined = joined + 1
    redis.call('PUBLISH', ARGV[4], '{"room":' .. ARGV[5] .. ',"joined":' .. user .. '}')
  end
  redis.call('ZADD', KEYS[1], 'GT', expiry, user)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return joined
"""

# KEYS[1] room set, KEYS[2] the user's holders hash. ARGV: node ('' for none:
# a sweep), user as JSON, presence channel, room as JSON.
# Drops the node's hold; when no live hold remains, the user has left:
# returns 1 after publishing ``left``, else 0.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[2], ARGV[1]) end
local holds = redis.call('HGETALL', KEYS[2])
local latest = nil
for i = 2, #holds, 2 do
  local expiry = tonumber(holds[i])
  if expiry > now and (latest == nil or expiry > latest) then latest = expiry end
end
if latest then
  redis.call('ZADD', KEYS[1], 'XX', latest, ARGV[2])
  return 0
end
redis.call('DEL', KEYS[2])
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', ARGV[3], '{"room":' .. ARGV[4] .. ',"left":' .. ARGV[2] .. '}')
  return 1
end
return 0
"""

# KEYS[1] room set. Returns the users (as JSON) whose every hold has expired.
_EXPIRED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
"""

HOLD_BATCH = 500  # users per script call when a daemon refreshes a big room


def announcements(channel: str) -> str:
    """The pub/sub channel where the scripts publish ``joined`` and ``left``."""
    return f"{channel}:presence"


def room_key(channel: str, room: str) -> str:
    return f"{{{channel}}}:presence:{room}"


def holders_key(channel: str, room: str, user_json: str) -> str:
    """``user_json`` as :func:`user_json` made it; the pair is JSON ``[room, user]``."""
    room_json = json.dumps(room, ensure_ascii=False)
    return f"{{{channel}}}:presence-holders:[{room_json},{user_json}]"


def user_json(user: Any) -> str:
    """A user id as the scripts store and announce it (42, or "alice")."""
    return json.dumps(user, separators=(",", ":"), ensure_ascii=False)


def online(client: redis.Redis, channel: str, room: str) -> list:
    """The users announced as online in ``room`` (joined and not yet left)."""
    return [json.loads(member) for member in client.zrange(room_key(channel, room), 0, -1)]


class SharedPresence:
    """The scripts a daemon runs; explicit settings, no knowledge of sockets."""

    def __init__(self, *, client: redis.Redis, channel: str, node: str,
                 ttl: float):
        self.client = client
        self.channel = channel
        self.node = node
        self.entry_ms = max(1, int(ttl * 600))  # a hold lives 0.6 ttl, refreshed every 0.2
        self.key_ms = max(1, int(ttl * 1000))
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._expired = client.register_script(_EXPIRED)

    def hold(self, rooms: dict[str, list[str]]) -> None:
        """Hold (or refresh) users (JSON) in each room: one round trip for all."""
        pipe = self.client.pipeline(transaction=False)
        for room, users in rooms.items():
            for start in range(0, len(users), HOLD_BATCH):
                batch = users[start:start + HOLD_BATCH]
                keys = [room_key(self.channel, room),
                        *(holders_key(self.channel, room, user) for user in batch)]
                self._hold(keys=keys, client=pipe, args=[
                    self.node, self.entry_ms, self.key_ms, announcements(self.channel),
                    user_json(room), *batch])
        pipe.execute()

    def release(self, keys: list[tuple[str, str]], node: str | None = None) -> list[bool]:
        """Drop this node's hold of each (room, user JSON), in one round trip; True
        for each that was the user's last hold (``left`` announced)."""
        pipe = self.client.pipeline(transaction=False)
        for room, user in keys:
            self._release(keys=[room_key(self.channel, room),
                                holders_key(self.channel, room, user)],
                          args=[self.node if node is None else node, user,
                                announcements(self.channel), user_json(room)], client=pipe)
        return [bool(left) for left in pipe.execute()]

    def sweep(self, rooms: list[str]) -> dict[str, int]:
        """Announce as left the users no live daemon holds; returns the rooms' counts."""
        pipe = self.client.pipeline(transaction=False)
        for room in rooms:
            self._expired(keys=[room_key(self.channel, room)], client=pipe)
        expired = pipe.execute()
        gone = [(room, member.decode())
                for room, members in zip(rooms, expired, strict=True) for member in members]
        if gone:
            self.release(gone, node="")
        for room in rooms:
            pipe.zcard(room_key(self.channel, room))
        return dict(zip(rooms, pipe.execute(), strict=True))
