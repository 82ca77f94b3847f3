-- KEYS: 1 head, 2 wait, 3 act, 4 due, 5 bucket, 6 left, 7 users, 8 pre
-- ARGV: 1 seq (0 for a pre-queue token: the place the draw gave the user), 2 user
-- Returns {state, until_ms, head, rate_milli, seq}; while waiting, `head` also counts the places
-- ahead whose people left, so the position is seq - head. The first look after admission
-- claims the slot.
local now = now_ms()
local seq, user = ARGV[1], ARGV[2]
if seq == '0' then
  if redis.call('HEXISTS', KEYS[8], user) == 1 then return {'PRE_QUEUE', 0, 0, 0, 0} end
  seq = redis.call('HGET', KEYS[7], user)
  if not seq then return {'EXPIRED', 0, 0, 0, 0} end
end
if redis.call('HGET', KEYS[2], seq) == user then
  local head = tonumber(redis.call('GET', KEYS[1]) or '0')
  local rate = rate_milli(KEYS[5])
  return {'WAITING', 0, head + left_between(KEYS[6], head, tonumber(seq)), rate, tonumber(seq)}
end
local a = redis.call('HGET', KEYS[3], seq)
if not a then return {'EXPIRED', 0, 0, 0, 0} end
local u, claimed, deadline, untl = parse_active(a)
if u ~= user or not live(claimed, deadline, untl, now) then return {'EXPIRED', 0, 0, 0, 0} end
if not claimed then
  redis.call('HSET', KEYS[3], seq, u .. ':1:' .. deadline .. ':' .. untl)
  redis.call('ZADD', KEYS[4], untl, seq)
end
return {'ACTIVE', untl, 0, 0, tonumber(seq)}
