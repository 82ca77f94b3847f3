-- KEYS: 1 seq, 2 head, 3 wait, 4 act, 5 users, 6 due, 7 rooms, 8 bucket, 9 log, 10 max, 11 left, 12 closed,
--       13 drawn, 14 pre
-- ARGV: 1 concert, 2 user, 3 max_active, 4 rate_per_sec, 5 claim_window_ms, 6 active_ttl_ms,
--       7 admit (1, or 0 while admission is paused), 8 draw entry id ('' when no on-sale is set)
-- Returns {seq, created (0|1), state ('WAITING'|'ACTIVE'), until_ms, head, rate_milli}; `head`
-- counts the places ahead whose people left, so a waiting position is seq - head. A closed line
-- gives no new place: the state is then why it closed ('SOLD_OUT'|'LINE_CLOSED'). Before the line's
-- on-sale draw, a join with an entry id goes to the pre-queue: state 'PRE_QUEUE', place 0.
local now = now_ms()
local user = ARGV[2]
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = rate_milli(KEYS[8])
local seq = redis.call('HGET', KEYS[5], user)
if seq then
  if redis.call('HGET', KEYS[3], seq) == user then
    return {tonumber(seq), 0, 'WAITING', 0, head + left_between(KEYS[11], head, tonumber(seq)), rate}
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
local closed = redis.call('GET', KEYS[12])
if closed then return {0, 0, closed, 0, 0, rate} end
if ARGV[8] ~= '' and redis.call('EXISTS', KEYS[13]) == 0 then
  redis.call('SADD', KEYS[7], ARGV[1])
  return {0, redis.call('HSETNX', KEYS[14], user, ARGV[8]), 'PRE_QUEUE', 0, 0, rate}
end
local s = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[5], user, s)
redis.call('SADD', KEYS[7], ARGV[1])
-- Admit at once when nobody waits ahead (every earlier place was admitted or left), a slot is
-- free and the admission bucket allows: the same bucket the tick uses, so the rate holds.
local left = redis.call('ZCARD', KEYS[11])
if s - 1 - head == left then
  local max_active = tonumber(ARGV[3])
  local active = redis.call('HLEN', KEYS[4])
  local b = redis.call('HMGET', KEYS[8], 'last', 'carry')
  local last, carry = tonumber(b[1]), tonumber(b[2]) or 0
  local free = 0
  if ARGV[7] == '1' then free = math.max(0, max_active - active) end
  -- A bucket never used yet starts full (a second's worth, within the cap).
  local elapsed = 1
  if last then elapsed = math.max(0, now - last) / 1000 end
  local n, left = admission_step(carry, tonumber(ARGV[4]), elapsed, free, 1)
  if n == 1 then
    local deadline, untl = now + tonumber(ARGV[5]), now + tonumber(ARGV[6])
    redis.call('HSET', KEYS[8], 'last', now, 'carry', tostring(left))
    redis.call('HSET', KEYS[4], s, user .. ':0:' .. deadline .. ':' .. untl)
    redis.call('ZADD', KEYS[6], deadline, s)
    redis.call('SET', KEYS[2], s)
    redis.call('DEL', KEYS[11])
    redis.call('SET', KEYS[10], max_active)
    redis.call('RPUSH', KEYS[9], (head + 1) .. ':' .. s .. ':' .. now .. ':' .. (active + 1) .. ':' .. max_active)
    redis.call('LTRIM', KEYS[9], -100000, -1)
    return {s, 1, 'ACTIVE', untl, s, rate}
  end
end
redis.call('HSET', KEYS[3], s, user)
return {s, 1, 'WAITING', 0, head + left, rate}
