-- KEYS: 1 act, 2 users, 3 due
-- ARGV: 1 seq (0 for a pre-queue token: the place the draw gave the user), 2 user
local seq = ARGV[1]
if seq == '0' then
  seq = redis.call('HGET', KEYS[2], ARGV[2])
  if not seq then return 0 end
end
local a = redis.call('HGET', KEYS[1], seq)
if not a then return 0 end
local u = parse_active(a)
if u ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], seq)
redis.call('ZREM', KEYS[3], seq)
if redis.call('HGET', KEYS[2], u) == seq then redis.call('HDEL', KEYS[2], u) end
return 1
