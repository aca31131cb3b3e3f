-- session-bridge: the history's position now (the newest entry), "0-0" when empty.
-- A script rather than XREVRANGE so that cluster clients route it by its key.
-- KEYS[1]  the history stream ({<channel>}:history)
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #newest == 0 then
  return '0-0'
end
return newest[1][1]
