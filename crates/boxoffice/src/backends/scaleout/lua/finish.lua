-- KEYS: 1 act, 2 users, 3 due
-- ARGV: 1 seq, 2 user
local a = redis.call('HGET', KEYS[1], ARGV[1])
if not a then return 0 end
local u = parse_active(a)
if u ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], u) == ARGV[1] then redis.call('HDEL', KEYS[2], u) end
return 1
