-- session-bridge: append one message to the event history; returns its position.
-- The PHP Emitter and `session-bridge emit` run this same script (a test keeps
-- their copies identical).
--
-- KEYS[1]  the history stream       ({<channel>}:history)
-- KEYS[2]  the retention hash       ({<channel>}:retention, written by the daemons)
-- ARGV[1]  the message, JSON as in the SPEC's publish format
-- ARGV[2]  history_size to assume when no daemon has written the retention yet
-- ARGV[3]  history_seconds, likewise
--
-- Retention keeps every entry that is among the last `size` entries OR younger
-- than `seconds`: only what is both older and beyond `size` goes, oldest first,
-- at most 100 entries per append (so an append stays cheap; the rest goes with
-- the next appends). The retention hash records the last position trimmed
-- (`trimmed`) and how many entries went (`removed`), so that a daemon can tell
-- whether a position is still covered.
local limits = redis.call('HMGET', KEYS[2], 'size', 'seconds')
local size = tonumber(limits[1]) or tonumber(ARGV[2])
local seconds = tonumber(limits[2]) or tonumber(ARGV[3])
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
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
