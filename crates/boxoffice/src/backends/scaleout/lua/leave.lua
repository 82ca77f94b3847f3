-- KEYS: 1 wait, 2 act, 3 users, 4 due, 5 left, 6 pre, 7 leftv (bumped when `left` gains a place:
--       instances re-read the leavers only then, tick.lua)
-- ARGV: 1 seq (0 for a pre-queue token), 2 user
-- Returns 'WAITING' or 'ACTIVE' (where the person was when they left), or 'NONE' (already over).
local seq, user = ARGV[1], ARGV[2]
if seq == '0' then
  if redis.call('HDEL', KEYS[6], user) == 1 then return 'WAITING' end
  seq = redis.call('HGET', KEYS[3], user)
  if not seq then return 'NONE' end
end
if redis.call('HGET', KEYS[1], seq) == user then
  -- The place stays issued but empty: the people behind count one fewer ahead of them.
  redis.call('HDEL', KEYS[1], seq)
  redis.call('ZADD', KEYS[5], seq, seq)
  redis.call('INCR', KEYS[7])
  if redis.call('HGET', KEYS[3], user) == seq then redis.call('HDEL', KEYS[3], user) end
  return 'WAITING'
end
local a = redis.call('HGET', KEYS[2], seq)
if not a then return 'NONE' end
local u = parse_active(a)
if u ~= user then return 'NONE' end
redis.call('HDEL', KEYS[2], seq)
redis.call('ZREM', KEYS[4], seq)
if redis.call('HGET', KEYS[3], user) == seq then redis.call('HDEL', KEYS[3], user) end
return 'ACTIVE'
