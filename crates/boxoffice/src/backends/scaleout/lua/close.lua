-- Closes a line: everyone waiting goes home, new places are refused (join.lua reads 'closed').
-- People already admitted keep their turn. The places passed are logged for the audit as
-- 'x:first:last:at'. O(people waiting), once per line.
-- KEYS: 1 seq, 2 head, 3 wait, 4 users, 5 left, 6 closed, 7 log, 8 pre
-- ARGV: 1 why ('SOLD_OUT'|'LINE_CLOSED')
-- Returns how many were waiting.
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local ended = 0
local w = redis.call('HGETALL', KEYS[3])
for i = 1, #w, 2 do
  if redis.call('HGET', KEYS[4], w[i + 1]) == w[i] then redis.call('HDEL', KEYS[4], w[i + 1]) end
  ended = ended + 1
end
ended = ended + redis.call('HLEN', KEYS[8])
redis.call('DEL', KEYS[3], KEYS[5], KEYS[8])
if issued > head then
  redis.call('SET', KEYS[2], issued)
  redis.call('RPUSH', KEYS[7], 'x:' .. (head + 1) .. ':' .. issued .. ':' .. now_ms())
end
redis.call('SET', KEYS[6], ARGV[1])
return ended
