-- KEYS: 1 seq, 2 head, 3 act, 4 bucket, 5 left, 6 pre
-- Returns {waiting, active, rate_milli, pre_queue}
local issued = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = rate_milli(KEYS[4])
return {issued - head - redis.call('ZCARD', KEYS[5]), redis.call('HLEN', KEYS[3]), rate, redis.call('HLEN', KEYS[6])}
