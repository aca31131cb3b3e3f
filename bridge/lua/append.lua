-- session-bridge: append one message to the event history; returns its position.
-- The PHP Emitter and `session-bridge emit` run this same script (a test keeps
-- their copies identical).
--
-- KEYS[1]  the history stream       ({<channel>}:history)
-- KEYS[2]  the retention hash       ({<channel>}:retention, written by the daemons)
-- KEYS[3]  optional: the record of an idempotency key ({<channel>}:sent:<key>)
-- ARGV[1]  the message, JSON as in the SPEC's publish format
-- ARGV[2]  history_size to assume when no daemon has written the retention yet
-- ARGV[3]  history_seconds, likewise
-- ARGV[4]  the idempotency key itself (with KEYS[3])
--
-- Retention keeps every entry that is among the last `size` entries OR younger
-- than `seconds`: only what is both older and beyond `size` goes, oldest first,
-- at most 100 entries per append (so an append stays cheap; the rest goes with
-- the next appends). The retention hash records the last position trimmed
-- (`trimmed`) and how many entries went (`removed`), so that a daemon can tell
-- whether a position is still covered.
--
-- Idempotency: an append with a key that an append in the last `seconds` (at
-- least one) already used returns that append's position and adds nothing, so
-- a publisher may retry an append whose outcome it does not know. The entry
-- keeps the key (field `k`). The record and the entry are one script's writes:
-- a replica, and so a promoted replica, has both or neither. The retry touches
-- the record (a write), so that a WAIT after it also covers the first append.
local limits = redis.call('HMGET', KEYS[2], 'size', 'seconds')
local size = tonumber(limits[1]) or tonumber(ARGV[2])
local seconds = tonumber(limits[2]) or tonumber(ARGV[3])
local keep_ms = math.max(1000, math.floor(seconds * 1000))
local id
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then
    redis.call('PEXPIRE', KEYS[3], keep_ms)
    return first
  end
  id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1], 'k', ARGV[4])
  redis.call('SET', KEYS[3], id, 'PX', keep_ms)
else
  id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
end
local excess = redis.call('XLEN', KEYS[1]) - size
if excess > 0 then
  local now = tonumber(string.match(id, '^(%d+)-'))
  local cutoff = '(' .. string.format('%d', now - seconds * 1000) .. '-0'
  local old = redis.call('XRANGE', KEYS[1], '-', cutoff, 'COUNT', math.min(excess, 100))
  if #old > 0 then
    local last = old[#old][1]
    local ms, seq = string.match(last, '^(%d+)-(%d+)$')
    local gone = redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))
    redis.call('HSET', KEYS[2], 'trimmed', last)
    redis.call('HINCRBY', KEYS[2], 'removed', gone)
  end
end
return id
