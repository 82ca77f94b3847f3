-- One admission tick of one concert's line, atomic, so any number of instances may run it:
-- together they never exceed max_active or the rate, and admit strictly from the front.
-- KEYS: 1 seq, 2 head, 3 wait, 4 act, 5 users, 6 due, 7 bucket, 8 log, 9 max, 10 left, 11 closed, 12 leftv
-- ARGV: 1 max_active, 2 rate_per_sec, 3 claim_window_ms, 4 active_ttl_ms, 5 admit (1, or 0 while
--       admission is paused), 6 most leavers to return, 7 the leavers' version the instance holds
-- Returns {admitted, no_shows, timed_out, head, rate_milli, closed (0|1), leavers' version, changed
-- (0|1), {leavers after head, when changed}, places issued}: all but the first three are the line's front as the instance's local view keeps it (line_view.rs), so
-- that status polls from people waiting are answered without a round trip.
local now = now_ms()
local no_shows, timed_out = 0, 0
for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 10000)) do
  local a = redis.call('HGET', KEYS[4], s)
  if a then
    local u, claimed, deadline, untl = parse_active(a)
    if not live(claimed, deadline, untl, now) then
      redis.call('HDEL', KEYS[4], s)
      redis.call('ZREM', KEYS[6], s)
      if redis.call('HGET', KEYS[5], u) == s then redis.call('HDEL', KEYS[5], u) end
      if claimed then timed_out = timed_out + 1 else no_shows = no_shows + 1 end
    end
  else
    redis.call('ZREM', KEYS[6], s)
  end
end

local max_active, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[7], 'last', 'carry', 'rate')
local last, carry, measured = tonumber(b[1]), tonumber(b[2]) or 0, tonumber(b[3])
local elapsed = 0
if last then elapsed = math.max(0, now - last) / 1000 end
local active = redis.call('HLEN', KEYS[4])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local free = 0
if ARGV[5] == '1' then free = math.max(0, max_active - active) end
local waiting = issued - head - redis.call('ZCARD', KEYS[10])
local n
-- A bucket never used yet starts full (a second's worth, within the cap).
local fill = 1
if last then fill = elapsed end
n, carry = admission_step(carry, rate, fill, free, waiting)
redis.call('HSET', KEYS[7], 'last', now, 'carry', tostring(carry))
local measured_next = smoothed_rate(measured, rate, n, elapsed, n >= waiting)
if measured_next and measured_next ~= measured then
  redis.call('HSET', KEYS[7], 'rate', tostring(measured_next))
end
if n > 0 then
  -- The limit the audit holds the active count to: the one of the last admission (a limit
  -- lowered later sends nobody home; it only stops admissions).
  redis.call('SET', KEYS[9], max_active)
  local deadline, untl = now + tonumber(ARGV[3]), now + tonumber(ARGV[4])
  -- From the front: places whose people left are passed (and forgotten), the rest admitted.
  local s, admitted = head, 0
  while admitted < n and s < issued do
    s = s + 1
    local u = redis.call('HGET', KEYS[3], s)
    if u then
      redis.call('HDEL', KEYS[3], s)
      redis.call('HSET', KEYS[4], s, u .. ':0:' .. deadline .. ':' .. untl)
      redis.call('ZADD', KEYS[6], deadline, s)
      admitted = admitted + 1
    else
      redis.call('ZREM', KEYS[10], s)
    end
  end
  n = admitted
  redis.call('SET', KEYS[2], s)
  -- The admission log the audit reads: first:last:at:active_after:max_active.
  redis.call('RPUSH', KEYS[8], (head + 1) .. ':' .. s .. ':' .. now .. ':' .. (active + n) .. ':' .. max_active)
  redis.call('LTRIM', KEYS[8], -100000, -1)
end
local front = tonumber(redis.call('GET', KEYS[2]) or '0')
local closed = 0
if redis.call('EXISTS', KEYS[11]) == 1 then closed = 1 end
-- The leavers only when someone left since the instance's copy: a place the head passes is
-- dropped from the copy by the instance itself.
local version = tonumber(redis.call('GET', KEYS[12]) or '0')
local changed, leavers = 0, {}
if tostring(version) ~= ARGV[7] then
  changed = 1
  leavers = redis.call('ZRANGEBYSCORE', KEYS[10], '(' .. front, '+inf', 'LIMIT', 0, tonumber(ARGV[6]) + 1)
end
return {n, no_shows, timed_out, front, rate_milli(KEYS[7]), closed, version, changed, leavers,
  tonumber(redis.call('GET', KEYS[1]) or '0')}
