-- Shared helpers, prepended to every script. Times come from the Redis server's clock so that
-- all instances agree. An active entry is "user:claimed(0|1):claim_deadline_ms:until_ms".
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse_active(a)
  local u, claimed, deadline, untl = string.match(a, '^(%d+):(%d):(%d+):(%d+)$')
  return u, claimed == '1', tonumber(deadline), tonumber(untl)
end

local function live(claimed, deadline, untl, now)
  return untl > now and (claimed or deadline > now)
end

-- The measured admission rate in thousandths per second, or -1 before the first measurement.
local function rate_milli(bucket)
  local r = tonumber(redis.call('HGET', bucket, 'rate'))
  if r then return math.floor(r * 1000) end
  return -1
end

-- One step of the admission token bucket, the same rule as domain::queue_policy::admission_step
-- (a test runs both on one table of cases): how many may be admitted now, and the allowance
-- carried on, capped at one second's worth.
local function admission_step(carry, rate, elapsed, free, waiting)
  local budget = math.min(carry + rate * math.max(elapsed, 0), math.max(rate, 1))
  local n = math.min(math.max(math.floor(budget), 0), free, waiting)
  return n, budget - n
end

-- Places between `head` and `seq` (both excluded) whose people left the line.
local function left_between(left, head, seq)
  return redis.call('ZCOUNT', left, '(' .. head, '(' .. seq)
end

-- The measured admission pace, the same rule as domain::queue_policy::smoothed_rate: nil until the
-- first measurement, which starts from the configured rate; a tick where the line itself was the
-- limit says nothing about the pace.
local function smoothed_rate(previous, configured, admitted, elapsed, line_was_limit)
  if elapsed <= 0 or line_was_limit then return previous end
  local prev = previous or configured
  local alpha = math.min(elapsed / 5, 1)
  return prev + alpha * (admitted / elapsed - prev)
end
