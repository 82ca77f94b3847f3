-- KEYS: 1 seq, 2 head, 3 act, 4 bucket
-- Returns {waiting, active, rate_milli}
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = tonumber(redis.call('HGET', KEYS[4], 'rate') or '0')
return {issued - head, redis.call('HLEN', KEYS[3]), math.floor(rate * 1000)}
