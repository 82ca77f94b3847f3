-- KEYS: 1 seq, 2 head, 3 wait, 4 act, 5 users, 6 due, 7 rooms, 8 bucket
-- ARGV: 1 concert, 2 user
-- Returns {seq, created (0|1), state ('WAITING'|'ACTIVE'), until_ms, head, rate_milli}
local now = now_ms()
local user = ARGV[2]
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = rate_milli(KEYS[8])
local seq = redis.call('HGET', KEYS[5], user)
if seq then
  if redis.call('HGET', KEYS[3], seq) == user then
    return {tonumber(seq), 0, 'WAITING', 0, head, rate}
  end
  local a = redis.call('HGET', KEYS[4], seq)
  if a then
    local u, claimed, deadline, untl = parse_active(a)
    if u == user and live(claimed, deadline, untl, now) then
      return {tonumber(seq), 0, 'ACTIVE', untl, head, rate}
    end
    -- Ended but not swept yet: end it now and start a new place at the back.
    redis.call('HDEL', KEYS[4], seq)
    redis.call('ZREM', KEYS[6], seq)
  end
  redis.call('HDEL', KEYS[5], user)
end
local s = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], s, user)
redis.call('HSET', KEYS[5], user, s)
redis.call('SADD', KEYS[7], ARGV[1])
return {s, 1, 'WAITING', 0, head, rate}
